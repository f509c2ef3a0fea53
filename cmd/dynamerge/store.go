package main

import (
	"context"
	"fmt"
	"path/filepath"
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
		st, err := dynamo.Open(ctx, dynamo.Config{
			Table:       arg,
			Endpoint:    cfg.DynamoDBEndpoint,
			CreateTable: cfg.CreateTable,
		})
		if err != nil {
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
