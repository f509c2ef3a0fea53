package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ErrTableLayout is returned by CheckTable (and Open) for a table whose keys
// or feed index are not those of this layout: another application's table,
// or a typo in --store.
var ErrTableLayout = errors.New("dynamo: table does not have the dynamerge layout")

// FeedProjection is the attributes the feed index carries besides its keys:
// what Feed returns and no more, so that a snapshot's meta update (which
// changes none of them) costs no index write.
var FeedProjection = []string{AttrID, AttrSeq, AttrHeads, AttrUpdatedAt}

// FeedProjectionLifecycle is what tables are created with: FeedProjection
// and the deletion time, so that feed entries say which records are
// deleted. Tables created before it lack it (a GSI's projection cannot be
// changed); their feed entries never say deleted, which costs devices
// only a later drop (the record's own sync shows it deleted).
var FeedProjectionLifecycle = append(slices.Clip(FeedProjection), AttrDeletedAt, AttrPurged)

// TableDefinition is the CreateTable request of a dynamerge table: the
// layout of layout.go, on-demand billing, and a stream of new images for
// cross-instance change events. schema/cloudformation.yaml declares the
// same table for production (with point-in-time recovery, which CreateTable
// cannot ask for).
func TableDefinition(table string) *dynamodb.CreateTableInput {
	str := types.ScalarAttributeTypeS
	return &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(AttrPK), AttributeType: str},
			{AttributeName: aws.String(AttrSK), AttributeType: str},
			{AttributeName: aws.String(AttrFeedPK), AttributeType: str},
			{AttributeName: aws.String(AttrFeedSK), AttributeType: str},
			{AttributeName: aws.String(AttrDeletedPK), AttributeType: str},
			{AttributeName: aws.String(AttrDeletedAt), AttributeType: types.ScalarAttributeTypeN},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(IndexFeed),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(AttrFeedPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(AttrFeedSK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{
				ProjectionType:   types.ProjectionTypeInclude,
				NonKeyAttributes: FeedProjectionLifecycle,
			},
		}, DeletedIndex()},
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewTypeNewImage,
		},
	}
}

// CreateTable creates the table as TableDefinition describes and waits until
// it is active. A table that exists already is checked with CheckTable
// instead, so that creating is idempotent. It is a development convenience
// (dynamerge --create-table); production tables come from
// schema/cloudformation.yaml.
func CreateTable(ctx context.Context, api API, table string) error {
	_, err := api.CreateTable(ctx, TableDefinition(table))
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("dynamo: create table %s: %w", table, classify(err))
	}
	for {
		err := CheckTable(ctx, api, table)
		if !errors.Is(err, errNotActive) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("dynamo: create table %s: waiting for it to be active: %w", table, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

var errNotActive = errors.New("dynamo: table is not active yet")

// CheckTable checks that the table exists, is active, and has the key
// schema and feed index of this layout. It returns an error wrapping
// ErrTableLayout when the layout differs.
func CheckTable(ctx context.Context, api API, table string) error {
	out, err := api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return fmt.Errorf("dynamo: table %s does not exist (create it from schema/cloudformation.yaml, or pass --create-table in development): %w", table, err)
		}
		return fmt.Errorf("dynamo: describe table %s: %w", table, classify(err))
	}
	t := out.Table
	if t.TableStatus == types.TableStatusCreating {
		return errNotActive
	}
	want := TableDefinition(table)
	if !sameKeys(t.KeySchema, want.KeySchema) {
		return fmt.Errorf("%w: %s: key schema %s, want %s (string) and %s (string)", ErrTableLayout, table, keyNames(t.KeySchema), AttrPK, AttrSK)
	}
	for _, d := range t.AttributeDefinitions {
		if (*d.AttributeName == AttrPK || *d.AttributeName == AttrSK) && d.AttributeType != types.ScalarAttributeTypeS {
			return fmt.Errorf("%w: %s: key %s has type %s, want S", ErrTableLayout, table, *d.AttributeName, d.AttributeType)
		}
	}
	for _, g := range t.GlobalSecondaryIndexes {
		if aws.ToString(g.IndexName) != IndexFeed {
			continue
		}
		if !sameKeys(g.KeySchema, want.GlobalSecondaryIndexes[0].KeySchema) {
			return fmt.Errorf("%w: %s: index %s has keys %s, want %s and %s", ErrTableLayout, table, IndexFeed, keyNames(g.KeySchema), AttrFeedPK, AttrFeedSK)
		}
		if p := g.Projection; p == nil || (p.ProjectionType != types.ProjectionTypeAll && !containsAll(p.NonKeyAttributes, FeedProjection)) {
			return fmt.Errorf("%w: %s: index %s must project %v", ErrTableLayout, table, IndexFeed, FeedProjection)
		}
		if g.IndexStatus == types.IndexStatusCreating {
			return errNotActive
		}
		return nil
	}
	return fmt.Errorf("%w: %s: no global secondary index %q", ErrTableLayout, table, IndexFeed)
}

// DeleteTable deletes the table (tests and benchmarks clean up with it).
func DeleteTable(ctx context.Context, api API, table string) error {
	if _, err := api.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)}); err != nil {
		return fmt.Errorf("dynamo: delete table %s: %w", table, classify(err))
	}
	return nil
}

func sameKeys(got, want []types.KeySchemaElement) bool {
	return slices.EqualFunc(got, want, func(a, b types.KeySchemaElement) bool {
		return aws.ToString(a.AttributeName) == aws.ToString(b.AttributeName) && a.KeyType == b.KeyType
	})
}

func keyNames(ks []types.KeySchemaElement) string {
	var s []string
	for _, k := range ks {
		s = append(s, fmt.Sprintf("%s (%s)", aws.ToString(k.AttributeName), k.KeyType))
	}
	return fmt.Sprint(s)
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// DeletedIndex is the sparse GSI of deleted records that the purge sweep
// reads (Store.DeletedBefore): only meta items of deleted records carry its
// key, so it costs a write only when a record is deleted, undeleted or
// purged. A table created before it can have it added (UpdateTable, see
// schema/dynamodb.md); until then records are never purged.
func DeletedIndex() types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName: aws.String(IndexDeleted),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(AttrDeletedPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(AttrDeletedAt), KeyType: types.KeyTypeRange},
		},
		Projection: &types.Projection{
			ProjectionType:   types.ProjectionTypeInclude,
			NonKeyAttributes: []string{AttrSeq},
		},
	}
}
