package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/dynamerge/dynamerge/store"
)

// Error codes of DynamoDB that mean "try again later": the SDK retries them
// itself, and one that reaches the store has outlasted those retries.
var transientCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"ThrottlingException":                    true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"TransactionInProgressException":         true,
	"TransactionConflictException":           true,
	"LimitExceededException":                 true,
}

// Cancellation reason codes of TransactionCanceledException that Append
// acts on (see TransactWriteItems in the DynamoDB API reference); any other
// code (ValidationError, ItemCollectionSizeLimitExceeded) is reported as it
// is.
const (
	reasonNone            = "None"
	reasonConditionFailed = "ConditionalCheckFailed"
	reasonConflict        = "TransactionConflict"
	reasonThroughput      = "ProvisionedThroughputExceeded"
	reasonThrottling      = "ThrottlingError"
)

// classify wraps err so that callers can test it with errors.Is: failures
// that may succeed later (throttling past the SDK's retries, server errors,
// network errors, deadlines) wrap store.ErrUnavailable; the rest (a missing
// table, denied access, a malformed request) are returned as they are, and
// the engine treats them as unavailable too. The original error stays in
// the chain for the logs.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The outcome of a write cut short is unknown; callers that care
		// (Append) resolve it before they get here.
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if transientCodes[ae.ErrorCode()] {
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	// Not an answer from DynamoDB at all: the connection failed, the
	// retry quota ran out, the endpoint did not resolve.
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// cancellation reads the reasons of a cancelled transaction: whether a
// condition failed (someone else's write won), whether only transaction
// conflicts stopped it (worth retrying), and whether it was throttled.
type cancellation struct {
	conditionFailed bool
	conflict        bool
	throttled       bool
	other           []string // other codes with their messages, for the error
}

func readCancellation(tce *types.TransactionCanceledException) cancellation {
	var c cancellation
	for i, r := range tce.CancellationReasons {
		code := deref(r.Code)
		switch code {
		case "", reasonNone:
		case reasonConditionFailed:
			c.conditionFailed = true
		case reasonConflict:
			c.conflict = true
		case reasonThroughput, reasonThrottling:
			c.throttled = true
		default:
			c.other = append(c.other, fmt.Sprintf("item %d: %s: %s", i, code, deref(r.Message)))
		}
	}
	return c
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
