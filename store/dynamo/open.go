package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Config says which table Open uses and how to reach it.
type Config struct {
	// Table is the table's name (required).
	Table string
	// Endpoint overrides DynamoDB's endpoint, e.g. http://127.0.0.1:8000
	// for DynamoDB Local. Empty means AWS's regional endpoint.
	Endpoint string
	// CreateTable creates the table when it does not exist (development
	// convenience; see CreateTable).
	CreateTable bool
	// Options configures the store; nil means defaults.
	Options *Options
}

// Open returns a store on cfg.Table with the region and credentials of the
// standard AWS chain (environment variables, shared config and credential
// files, web identity, container and instance roles), after checking (or,
// with CreateTable, creating) the table.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Table == "" {
		return nil, errors.New("dynamo: open: no table name")
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("dynamo: open %s: AWS configuration: %w", cfg.Table, err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("dynamo: open %s: no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or a region in the shared config file for AWS_PROFILE", cfg.Table)
	}
	client := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = &cfg.Endpoint
		}
	})
	s := New(client, cfg.Table, cfg.Options)
	if cfg.CreateTable {
		// Creating a table with its index takes seconds to minutes on
		// AWS: bounded by ctx alone.
		err = CreateTable(ctx, client, cfg.Table)
	} else {
		cctx, cancel := s.callContext(ctx)
		err = CheckTable(cctx, client, cfg.Table)
		cancel()
	}
	if err != nil {
		return nil, err
	}
	// The feed shard count writers use (feedshards.go).
	if _, err := s.FeedShards(ctx); err != nil {
		return nil, fmt.Errorf("dynamo: open %s: %w", cfg.Table, err)
	}
	return s, nil
}
