// Package dynamotest runs tests against DynamoDB Local: it finds the
// endpoint, makes clients with dummy credentials, creates a table per test
// and deletes it afterwards, and wraps clients to inject the faults
// DynamoDB Local never produces.
//
// Tests that use it skip, saying why, when DYNAMERGE_DYNAMODB_ENDPOINT is
// unset, so that `go test ./...` works without Java; `make test` starts
// DynamoDB Local and sets it (scripts/test.sh).
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dynamerge/dynamerge/store/dynamo"
)

// EnvEndpoint names the environment variable holding DynamoDB Local's
// endpoint (http://127.0.0.1:PORT).
const EnvEndpoint = "DYNAMERGE_DYNAMODB_ENDPOINT"

// Region and credentials for DynamoDB Local, which accepts any made of
// letters and digits: they live
// here, in test code, and never in the binary's defaults.
const (
	Region    = "us-east-1"
	AccessKey = "dynamergetest"
	SecretKey = "dynamergetest"
)

// Endpoint returns DynamoDB Local's endpoint, or skips the test when none
// is configured.
func Endpoint(tb testing.TB) string {
	tb.Helper()
	ep := os.Getenv(EnvEndpoint)
	if ep == "" {
		tb.Skipf("%s is not set: no DynamoDB Local to test against (make test starts one; or run scripts/dynamodb-local.sh start DIR and export it)", EnvEndpoint)
	}
	return ep
}

// Client returns a client of DynamoDB Local with the test region and dummy
// credentials; optFns adjust its options (e.g. to add middleware).
func Client(tb testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	tb.Helper()
	ep := Endpoint(tb)
	return dynamodb.New(dynamodb.Options{
		Region:       Region,
		BaseEndpoint: aws.String(ep),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	}, optFns...)
}

// SetEnv points the standard AWS configuration chain (as dynamo.Open and
// the binary read it) at DynamoDB Local for the test, and returns the
// endpoint.
func SetEnv(t *testing.T) string {
	t.Helper()
	ep := Endpoint(t)
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	return ep
}

// TableOption adjusts the table NewTable creates.
type TableOption func(*dynamodb.CreateTableInput)

// WithoutStream creates the table without a stream. DynamoDB Local's stream
// costs 20–30 ms per write (measured: a PutItem takes 2 ms on a table
// without a stream and 32 ms with one), which AWS's does not; tests that
// write a lot and do not read the stream use it to stay fast, and
// throughput measurements to see the rest.
func WithoutStream(in *dynamodb.CreateTableInput) { in.StreamSpecification = nil }

// TableName returns a fresh random table name.
func TableName() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "dynamerge-test-" + hex.EncodeToString(b[:])
}

// NewTable creates a fresh table with the dynamerge layout (adjusted by
// opts) and deletes it when the test ends.
func NewTable(tb testing.TB, api dynamo.API, opts ...TableOption) string {
	tb.Helper()
	table := TableName()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if len(opts) > 0 {
		def := dynamo.TableDefinition(table)
		for _, o := range opts {
			o(def)
		}
		if _, err := api.CreateTable(ctx, def); err != nil {
			tb.Fatalf("create table %s: %v", table, err)
		}
	}
	// Creates the table, or waits until the one just created is active.
	if err := dynamo.CreateTable(ctx, api, table); err != nil {
		tb.Fatalf("create table %s: %v", table, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := dynamo.DeleteTable(ctx, api, table); err != nil {
			tb.Errorf("delete table %s: %v", table, err)
		}
	})
	return table
}

// NewStore returns a store on a fresh table of DynamoDB Local (adjusted by
// tableOpts), reached through wrap(client) when wrap is not nil, closed and
// deleted when the test ends.
func NewStore(tb testing.TB, opts *dynamo.Options, wrap func(dynamo.API) dynamo.API, tableOpts ...TableOption) *dynamo.Store {
	tb.Helper()
	client := Client(tb)
	table := NewTable(tb, client, tableOpts...)
	var api dynamo.API = client
	if wrap != nil {
		api = wrap(client)
	}
	s := dynamo.New(api, table, opts)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
