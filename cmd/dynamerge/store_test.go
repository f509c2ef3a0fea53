package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/automerge/automerge-go"

	"github.com/dynamerge/dynamerge/client"
	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/dynamo"
	"github.com/dynamerge/dynamerge/store/dynamo/dynamotest"
)

// TestOpenStoreDynamoDB opens --store dynamodb:<table> against DynamoDB
// Local, with region and credentials from the environment as in
// production: a missing table is a clear error naming the way out,
// --create-table creates it (and is idempotent), and the store works.
func TestOpenStoreDynamoDB(t *testing.T) {
	ep := dynamotest.SetEnv(t)
	table := dynamotest.TableName()
	cfg := DefaultConfig()
	cfg.Store, cfg.DynamoDBEndpoint = "dynamodb:"+table, ep

	_, _, err := openStore(cfg)
	if err == nil || !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), "--create-table") {
		t.Fatalf("openStore(missing table) = %v, want an error saying it does not exist and how to create it", err)
	}

	cfg.CreateTable = true
	t.Cleanup(func() {
		if err := dynamo.DeleteTable(context.Background(), dynamotest.Client(t), table); err != nil {
			t.Errorf("delete table: %v", err)
		}
	})
	for i := range 2 { // the second time the table exists
		st, desc, err := openStore(cfg)
		if err != nil {
			t.Fatalf("openStore #%d: %v", i+1, err)
		}
		if want := "dynamodb:" + table + " at " + ep; desc != want {
			t.Fatalf("description %q, want %q", desc, want)
		}
		if err := st.Ping(context.Background()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		st.Close()
	}

	// A table of another application is refused, not written to.
	other := dynamotest.TableName()
	def := dynamo.TableDefinition(other)
	def.GlobalSecondaryIndexes, def.AttributeDefinitions = nil, def.AttributeDefinitions[:2]
	c := dynamotest.Client(t)
	if _, err := c.CreateTable(context.Background(), def); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dynamo.DeleteTable(context.Background(), c, other) })
	cfg.Store, cfg.CreateTable = "dynamodb:"+other, false
	if _, _, err := openStore(cfg); !errors.Is(err, dynamo.ErrTableLayout) {
		t.Fatalf("openStore(table without the feed index) = %v, want ErrTableLayout", err)
	}
}

// TestRunOnDynamoDB runs the program on DynamoDB Local with --create-table:
// it is ready, stores a push, and serves it back.
func TestRunOnDynamoDB(t *testing.T) {
	ep := dynamotest.SetEnv(t)
	table := dynamotest.TableName()
	t.Cleanup(func() { _ = dynamo.DeleteTable(context.Background(), dynamotest.Client(t), table) })
	ctx := context.Background()
	p := startRun(t, []string{"--store", "dynamodb:" + table, "--dynamodb-endpoint", ep, "--create-table"}, nil)
	addr := p.addr
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz = %d", resp.StatusCode)
	}

	doc := automerge.New()
	if err := doc.Path("title").Set("stored in DynamoDB"); err != nil {
		t.Fatal(err)
	}
	if _, err := doc.Commit("title"); err != nil {
		t.Fatal(err)
	}
	cl := client.New("http://" + addr)
	key := store.Key{Collection: "todos", ID: "first"}
	res, err := cl.Sync(ctx, []client.Doc{{Collection: key.Collection, ID: key.ID, Changes: doc.SaveIncremental()}})
	if err != nil || res[0].Err != nil {
		t.Fatalf("sync: %v %v", err, res[0].Err)
	}
	rec, err := cl.Get(ctx, key.Collection, key.ID)
	if err != nil || !strings.Contains(string(rec.Doc), "stored in DynamoDB") {
		t.Fatalf("Get = %s, %v", rec.Doc, err)
	}

	// /metrics carries the store's consumed capacity and the watch on the
	// table's stream: operators see what DynamoDB bills.
	resp, err = http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, re := range []string{
		`(?m)^dynamerge_dynamodb_write_units_total\{op="append"\} [1-9]`,
		`(?m)^dynamerge_dynamodb_read_units_total\{op="load"\} `,
		`(?m)^dynamerge_dynamodb_appends_total 1$`,
		`(?m)^dynamerge_watch_changes_total `,
	} {
		if !regexp.MustCompile(re).Match(metrics) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}
	if err := p.stop(); err != nil {
		t.Fatalf("run: %v\n%s", err, p.logs.String())
	}
}

// TestOpenStoreNoAWSCredentials: with no AWS credentials anywhere, opening
// a DynamoDB store says so in one sentence, with the way out for DynamoDB
// Local, instead of the SDK's account of the instance metadata service.
func TestOpenStoreNoAWSCredentials(t *testing.T) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_REGION": "us-east-1",
		// No instance metadata service is asked: the test is the same on
		// EC2 and fast everywhere.
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	cfg := DefaultConfig()
	cfg.Store, cfg.DynamoDBEndpoint = "dynamodb:records", "http://127.0.0.1:1"
	_, _, err := openStore(cfg)
	if !errors.Is(err, errNoAWSCredentials) {
		t.Fatalf("openStore() = %v, want errNoAWSCredentials", err)
	}
	for _, w := range []string{"no AWS credentials", "AWS_ACCESS_KEY_ID=x"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "IMDS") {
		t.Errorf("error %q recounts the SDK's internals", err)
	}
}
