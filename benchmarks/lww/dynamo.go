package lww

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// DynamoStore keeps one item per record in a DynamoDB table keyed by "pk":
// the whole JSON document and its stamp, replaced by a conditional PutItem
// when the new stamp is later — the usual hand-written sync table.
type DynamoStore struct {
	client     *dynamodb.Client
	table      string
	writeMilli atomic.Uint64 // consumed write capacity, milli-units
}

var _ Store = (*DynamoStore)(nil)

// OpenDynamo opens (creating when missing) table at endpoint ("" for AWS's
// regional endpoint), with the standard AWS configuration chain.
func OpenDynamo(ctx context.Context, table, endpoint string) (*DynamoStore, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("lww: dynamo %s: AWS configuration: %w", table, err)
	}
	c := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	_, err = c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		BillingMode:          types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return nil, fmt.Errorf("lww: dynamo create table %s: %w", table, err)
	}
	w := dynamodb.NewTableExistsWaiter(c)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, time.Minute); err != nil {
		return nil, fmt.Errorf("lww: dynamo table %s: %w", table, err)
	}
	return &DynamoStore{client: c, table: table}, nil
}

// Put implements Store.Put with one conditional PutItem; when the condition
// fails, the stored version is read back (strongly consistent) and returned.
func (s *DynamoStore) Put(ctx context.Context, key string, v Version) (Version, error) {
	ts := strconv.FormatInt(v.Stamp.Time, 10)
	out, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(s.table),
		Item: map[string]types.AttributeValue{
			"pk":     &types.AttributeValueMemberS{Value: key},
			"time":   &types.AttributeValueMemberN{Value: ts},
			"writer": &types.AttributeValueMemberS{Value: v.Stamp.Writer},
			"doc":    &types.AttributeValueMemberS{Value: string(v.Doc)},
		},
		ConditionExpression:      aws.String("attribute_not_exists(pk) OR #t < :t OR (#t = :t AND #w < :w)"),
		ExpressionAttributeNames: map[string]string{"#t": "time", "#w": "writer"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":t": &types.AttributeValueMemberN{Value: ts},
			":w": &types.AttributeValueMemberS{Value: v.Stamp.Writer},
		},
		ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
	})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case err == nil:
		s.addWrite(out.ConsumedCapacity)
		return v, nil
	case errors.As(err, &ccf):
		return s.Get(ctx, key)
	default:
		return Version{}, fmt.Errorf("lww: dynamo put %s: %w", key, err)
	}
}

func (s *DynamoStore) addWrite(cc *types.ConsumedCapacity) {
	if cc != nil && cc.CapacityUnits != nil {
		s.writeMilli.Add(uint64(*cc.CapacityUnits * 1000))
	}
}

// WriteUnits returns the write capacity units DynamoDB reported for
// successful Puts so far.
func (s *DynamoStore) WriteUnits() float64 { return float64(s.writeMilli.Load()) / 1000 }

// Get implements Store.Get with a strongly consistent read.
func (s *DynamoStore) Get(ctx context.Context, key string) (Version, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: key}},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Version{}, fmt.Errorf("lww: dynamo get %s: %w", key, err)
	}
	if out.Item == nil {
		return Version{}, fmt.Errorf("lww: dynamo get %s: %w", key, ErrNotFound)
	}
	var v Version
	t, ok1 := out.Item["time"].(*types.AttributeValueMemberN)
	w, ok2 := out.Item["writer"].(*types.AttributeValueMemberS)
	d, ok3 := out.Item["doc"].(*types.AttributeValueMemberS)
	if !ok1 || !ok2 || !ok3 {
		return Version{}, fmt.Errorf("lww: dynamo get %s: item lacks time, writer or doc", key)
	}
	n, err := strconv.ParseInt(t.Value, 10, 64)
	if err != nil {
		return Version{}, fmt.Errorf("lww: dynamo get %s: time: %w", key, err)
	}
	v.Stamp = Stamp{Time: n, Writer: w.Value}
	v.Doc = []byte(d.Value)
	return v, nil
}

// Close implements Store.Close; the SDK client holds nothing to release.
func (s *DynamoStore) Close() error { return nil }
