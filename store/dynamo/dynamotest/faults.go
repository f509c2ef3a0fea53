package dynamotest

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store/dynamo"
)

// Operation names passed to Faults.Inject.
const (
	OpGetItem            = "GetItem"
	OpPutItem            = "PutItem"
	OpUpdateItem         = "UpdateItem"
	OpQuery              = "Query"
	OpTransactWriteItems = "TransactWriteItems"
	OpBatchWriteItem     = "BatchWriteItem"
	OpDescribeTable      = "DescribeTable"
)

// Fault is what Faults.Inject decides for one call.
type Fault struct {
	// Err, when not nil, is returned to the store instead of the answer.
	Err error
	// Landed makes the real call happen first (its answer is dropped and
	// Err returned): a write whose response was lost.
	Landed bool
}

// Faults is a dynamo.API that passes calls to API, failing those that Inject
// picks, as a throttled, conflicting or unreachable DynamoDB would after the
// SDK's own retries. It also records the size of every item written, to
// check that none goes over DynamoDB's limit.
type Faults struct {
	dynamo.API
	// Inject is called before every call with the operation's name and
	// input; nil injects nothing.
	Inject func(op string, in any) Fault

	mu       sync.Mutex
	maxItem  int
	injected map[string]int
}

// MaxItemSize returns the largest item written so far, in bytes as DynamoDB
// counts them (see ItemSize).
func (f *Faults) MaxItemSize() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxItem
}

// Injected returns how many faults were injected per operation.
func (f *Faults) Injected() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := make(map[string]int, len(f.injected))
	for k, v := range f.injected {
		m[k] = v
	}
	return m
}

func (f *Faults) decide(op string, in any) Fault {
	if f.Inject == nil {
		return Fault{}
	}
	fault := f.Inject(op, in)
	if fault.Err != nil {
		f.mu.Lock()
		if f.injected == nil {
			f.injected = map[string]int{}
		}
		f.injected[op]++
		f.mu.Unlock()
	}
	return fault
}

func (f *Faults) sizes(items ...map[string]types.AttributeValue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, it := range items {
		f.maxItem = max(f.maxItem, ItemSize(it))
	}
}

func call[In, Out any](f *Faults, op string, in In, real func() (Out, error)) (Out, error) {
	fault := f.decide(op, in)
	var zero Out
	if fault.Err != nil && !fault.Landed {
		return zero, fault.Err
	}
	out, err := real()
	if fault.Err != nil {
		return zero, fault.Err
	}
	return out, err
}

// GetItem implements dynamo.API.
func (f *Faults) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return call(f, OpGetItem, in, func() (*dynamodb.GetItemOutput, error) { return f.API.GetItem(ctx, in, o...) })
}

// PutItem implements dynamo.API.
func (f *Faults) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	f.sizes(in.Item)
	return call(f, OpPutItem, in, func() (*dynamodb.PutItemOutput, error) { return f.API.PutItem(ctx, in, o...) })
}

// UpdateItem implements dynamo.API.
func (f *Faults) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return call(f, OpUpdateItem, in, func() (*dynamodb.UpdateItemOutput, error) { return f.API.UpdateItem(ctx, in, o...) })
}

// Query implements dynamo.API.
func (f *Faults) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return call(f, OpQuery, in, func() (*dynamodb.QueryOutput, error) { return f.API.Query(ctx, in, o...) })
}

// TransactWriteItems implements dynamo.API.
func (f *Faults) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		if it.Put != nil {
			f.sizes(it.Put.Item)
		}
	}
	return call(f, OpTransactWriteItems, in, func() (*dynamodb.TransactWriteItemsOutput, error) { return f.API.TransactWriteItems(ctx, in, o...) })
}

// BatchWriteItem implements dynamo.API.
func (f *Faults) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	for _, reqs := range in.RequestItems {
		for _, r := range reqs {
			if r.PutRequest != nil {
				f.sizes(r.PutRequest.Item)
			}
		}
	}
	return call(f, OpBatchWriteItem, in, func() (*dynamodb.BatchWriteItemOutput, error) { return f.API.BatchWriteItem(ctx, in, o...) })
}

// DescribeTable implements dynamo.API.
func (f *Faults) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return call(f, OpDescribeTable, in, func() (*dynamodb.DescribeTableOutput, error) { return f.API.DescribeTable(ctx, in, o...) })
}

// Errors as DynamoDB (through the SDK) returns them, for Inject.

// Throttled is what a call throttled past the SDK's retries returns.
func Throttled() error {
	return &types.ProvisionedThroughputExceededException{Message: aws.String("injected: throughput exceeded")}
}

// Cancelled is a TransactionCanceledException with one reason per item of
// the transaction: codes[i], or "None" past the end of codes.
func Cancelled(items int, codes ...string) error {
	reasons := make([]types.CancellationReason, items)
	for i := range reasons {
		code := "None"
		if i < len(codes) && codes[i] != "" {
			code = codes[i]
		}
		reasons[i] = types.CancellationReason{Code: aws.String(code), Message: aws.String("injected")}
	}
	return &types.TransactionCanceledException{
		Message:             aws.String(fmt.Sprintf("injected: transaction cancelled %v", codes)),
		CancellationReasons: reasons,
	}
}

// Timeout is what a call whose deadline passed mid-flight returns: the
// request may or may not have been applied.
func Timeout(op string) error {
	return fmt.Errorf("operation error DynamoDB: %s, injected: response lost: %w", op, context.DeadlineExceeded)
}

// ItemSize is an item's size as DynamoDB counts it against the 400 KB
// limit: attribute names plus values (strings and binaries by length,
// numbers at most 21 bytes, 3 bytes of overhead per list or map plus one
// per element).
func ItemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return len(v.Value)
	case *types.AttributeValueMemberB:
		return len(v.Value)
	case *types.AttributeValueMemberN:
		return 21
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range v.Value {
			n += 1 + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberM:
		n := 3
		for k, e := range v.Value {
			n += 1 + len(k) + valueSize(e)
		}
		return n
	case *types.AttributeValueMemberSS:
		n := 0
		for _, s := range v.Value {
			n += len(s)
		}
		return n
	default:
		return 0
	}
}
