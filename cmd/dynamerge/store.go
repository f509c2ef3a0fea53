package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/dynamerge/dynamerge/store"
	"github.com/dynamerge/dynamerge/store/bolt"
	"github.com/dynamerge/dynamerge/store/dynamo"
)

// openDynamoTimeout bounds opening a DynamoDB store: loading the AWS
// configuration, checking the table, and with --create-table creating it
// and waiting until it is active (seconds on AWS, milliseconds locally).
const openDynamoTimeout = 2 * time.Minute

// openStore opens the store named by --store and returns it with a
// description for the start-up log.
func openStore(cfg Config) (store.Store, string, error) {
	kind, arg, err := ParseStore(cfg.Store)
	if err != nil {
		// Validate already checked it; kept for callers that skip Validate.
		return nil, "", fmt.Errorf("%w: --store: %w", errUsage, err)
	}
	switch kind {
	case StoreBolt:
		// bolt.Open creates the file's folder too, so the default path works
		// in a fresh checkout.
		st, err := bolt.Open(arg, nil)
		if err != nil {
			return nil, "", fmt.Errorf("open bolt store %s: %w", arg, err)
		}
		abs, aerr := filepath.Abs(arg)
		if aerr != nil {
			abs = arg
		}
		return st, "bolt:" + abs, nil
	case StoreDynamoDB:
		ctx, cancel := context.WithTimeout(context.Background(), openDynamoTimeout)
		defer cancel()
		if err := checkAWSCredentials(ctx); err != nil {
			return nil, "", fmt.Errorf("open dynamodb store %s: %w", arg, err)
		}
		st, err := dynamo.Open(ctx, dynamo.Config{
			Table:       arg,
			Endpoint:    cfg.DynamoDBEndpoint,
			CreateTable: cfg.CreateTable,
			Options:     cfg.dynamoOptions(),
		})
		if err != nil {
			return nil, "", fmt.Errorf("open dynamodb store %s: %w", arg, err)
		}
		if err := raiseFeedShards(ctx, cfg, st); err != nil {
			st.Close()
			return nil, "", fmt.Errorf("open dynamodb store %s: %w", arg, err)
		}
		desc := "dynamodb:" + arg
		if cfg.DynamoDBEndpoint != "" {
			desc += " at " + cfg.DynamoDBEndpoint
		}
		return st, desc, nil
	default:
		return nil, "", fmt.Errorf("%w: --store: %q is not supported", errUsage, cfg.Store)
	}
}

// StoreKind names a store backend.
type StoreKind string

// Store backends understood by --store.
const (
	StoreBolt     StoreKind = "bolt"
	StoreDynamoDB StoreKind = "dynamodb"
)

// ParseStore splits a --store value into its backend and its argument.
func ParseStore(s string) (StoreKind, string, error) {
	kind, arg, ok := strings.Cut(s, ":")
	if !ok {
		return "", "", fmt.Errorf("%q: want bolt:<path> or dynamodb:<table>", s)
	}
	switch StoreKind(kind) {
	case StoreBolt:
		if arg == "" {
			return "", "", fmt.Errorf("%q: bolt needs a file path, as in bolt:./dynamerge-data/dynamerge.db", s)
		}
		return StoreBolt, arg, nil
	case StoreDynamoDB:
		if !validTableName(arg) {
			return "", "", fmt.Errorf("%q: a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.', as in dynamodb:dynamerge", s)
		}
		return StoreDynamoDB, arg, nil
	default:
		return "", "", fmt.Errorf("%q: unknown store %q; want bolt:<path> or dynamodb:<table>", s, kind)
	}
}

// validTableName reports whether name follows DynamoDB's rules for table
// names, so that a typo fails at start-up with the rule rather than with an
// error from AWS.
func validTableName(name string) bool {
	if len(name) < 3 || len(name) > 255 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
