package worker

import (
	"bufio"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestServe_FlushBeforeFireAndForget: an answer written while a
// fire-and-forget request (evict) waits in the queue must still go out when
// that request turns out to be the last one. It used to stay in the
// worker's buffer, and the pool's request hung until the 30 s watchdog
// killed the worker (seen under memory pressure, where the engine evicts).
func TestServe_FlushBeforeFireAndForget(t *testing.T) {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	defer inW.Close()
	defer outR.Close()

	// Hold the first request long enough for the evict behind it to be
	// queued when its answer is written.
	old := testHookRequest
	testHookRequest = func(key string) {
		if key == "slow" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	defer func() { testHookRequest = old }()

	done := make(chan error, 1)
	go func() { done <- serve(inR, outW, slog.New(slog.DiscardHandler)) }()

	frames := append((&message{ID: 1, Op: opHello, Key: "slow"}).encode(),
		(&message{ID: 0, Op: opEvict, Key: "other/x"}).encode()...)
	if _, err := inW.Write(frames); err != nil {
		t.Fatal(err)
	}

	got := make(chan *message, 1)
	go func() {
		m, err := readMessage(bufio.NewReader(outR))
		if err != nil {
			t.Errorf("read answer: %v", err)
		}
		got <- m
	}()
	select {
	case m := <-got:
		if m != nil && m.ID != 1 {
			t.Fatalf("answer ID %d, want 1", m.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer within 5s: it is stuck in the worker's buffer")
	}
	inW.Close()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
