package benchmarks

import (
	"context"
	"fmt"

	"github.com/dynamerge/dynamerge/client"
)

// Set sets field of r's document to v as one new change, pushed by r's next
// sync. The benchmarks' clients are client.Replica: it pushes exactly the
// changes committed since its last acknowledged sync, so a client's cost
// stays flat however long the record's history, and the figures measure
// the server.
func Set(r *client.Replica, field string, v any) error {
	if err := r.Doc().Path(field).Set(v); err != nil {
		return fmt.Errorf("%s/%s: set %s: %w", r.Collection(), r.ID(), field, err)
	}
	_, err := r.Commit("")
	return err
}

// Sync syncs r, or with merge false only pushes (client.Replica.Push: the
// others' changes are not merged, which in the benchmark's one process
// would compete with the server for the same cores), and returns what the
// sync moved.
func Sync(ctx context.Context, r *client.Replica, merge bool) (client.SyncInfo, error) {
	var err error
	if merge {
		err = r.Sync(ctx)
	} else {
		err = r.Push(ctx)
	}
	if err != nil {
		return client.SyncInfo{}, err
	}
	return r.LastSync(), nil
}
