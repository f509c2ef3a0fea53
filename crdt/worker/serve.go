package worker

import (
	"bufio"
	"container/list"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/dynamerge/dynamerge/crdt"
)

// Main runs the process as a worker and exits if EnvWorker is set; otherwise
// it returns at once. Call it first in main() and in TestMain of every
// package whose tests start a Pool.
func Main() {
	if os.Getenv(EnvWorker) == "" {
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("worker_pid", os.Getpid())
	// automerge-go's Rust core, or a stray print, must not write into the
	// answer stream: answer on a private copy of stdout and point fd 1 at
	// stderr.
	out, err := privateStdout()
	if err != nil {
		log.Error("worker: cannot set up stdout", "err", err)
		os.Exit(1)
	}
	err = serve(os.Stdin, out, log)
	if err != nil {
		log.Error("worker: stopped", "err", err)
		os.Exit(1)
	}
	// EOF on stdin: the pool closed us, or died.
	os.Exit(0)
}

// server is the worker side: it holds documents keyed by record key, each
// with the log seq it reflects, in an LRU bounded by resident memory.
type server struct {
	log   *slog.Logger
	docs  map[string]*list.Element // of *entry
	lru   *list.List               // front = most recently used
	limit int64                    // bytes of RSS; 0 = unbounded
	base  int64                    // RSS before the first document, for the per-document estimate
	rss   func() (int64, error)
	warn  bool // warned that the limit is below what an empty worker needs
}

type entry struct {
	key string
	seq uint64
	doc *crdt.Doc
}

// serve answers requests from in on out until in ends (nil error) or a
// frame does not decode. Requests are read ahead of processing so that the
// pool's writes never wait on a slow request; they are processed one at a
// time, in order.
func serve(in io.Reader, out io.Writer, log *slog.Logger) error {
	s := &server{
		log:  log,
		docs: make(map[string]*list.Element),
		lru:  list.New(),
		rss:  selfRSS,
	}
	s.base, _ = s.rss()

	queue := make(chan *message, 4096)
	var readErr error
	go func() {
		defer close(queue)
		r := bufio.NewReaderSize(in, 64<<10)
		for {
			m, err := readMessage(r)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = fmt.Errorf("worker: read request: %w", err)
				}
				return
			}
			queue <- m
		}
	}()

	w := bufio.NewWriterSize(out, 64<<10)
	for m := range queue {
		ans := s.handle(m)
		if m.ID != 0 { // 0: fire and forget (evict), no answer
			ans.ID, ans.Op = m.ID, m.Op
			if _, err := w.Write(ans.encode()); err != nil {
				return fmt.Errorf("worker: write answer: %w", err)
			}
		}
		// Flush only when nothing else is queued: answers to a pipelined
		// burst go out together. Checked after fire-and-forget requests
		// too, or an answer buffered behind one would wait for the next
		// request, which may never come.
		if len(queue) == 0 {
			if err := w.Flush(); err != nil {
				return fmt.Errorf("worker: write answer: %w", err)
			}
		}
	}
	_ = w.Flush()
	return readErr
}

// testHookRequest, when set, sees every request before the worker handles
// it. Only this package's tests set it (in the worker processes that their
// TestMain starts), to make a worker die the way automerge-go's aborts do.
var testHookRequest func(key string)

func (s *server) handle(m *message) *message {
	if testHookRequest != nil {
		testHookRequest(m.Key)
	}
	var ans *message
	switch m.Op {
	case opHello:
		s.limit = m.Limit
		return &message{Status: statusOK, Limit: int64(os.Getpid())}
	case opApply:
		ans = s.apply(m)
	case opJSON:
		ans = s.json(m)
	case opSave:
		ans = s.save(m)
	case opChanges:
		ans = s.changes(m)
	case opEvict:
		s.drop(m.Key)
		return &message{Status: statusOK}
	default:
		return errAnswer(fmt.Errorf("worker: unknown op %v", m.Op))
	}
	s.trim()
	return ans
}

// errAnswer turns err into an answer, keeping the crdt sentinels apart so
// that the pool can wrap them again.
func errAnswer(err error) *message {
	st := statusError
	switch {
	case errors.Is(err, crdt.ErrInvalidChange):
		st = statusInvalid
	case errors.Is(err, crdt.ErrMissingDeps):
		st = statusMissingDeps
	}
	return &message{Status: st, Err: err.Error()}
}

func (s *server) apply(m *message) *message {
	e, ans := s.docAt(m, m.FromSeq)
	if ans != nil {
		return ans
	}
	chs, err := crdt.Split(m.Data)
	if err != nil {
		// Nothing touched the document: it stays valid at FromSeq.
		return errAnswer(err)
	}
	if err := e.doc.Apply(chs); err != nil {
		// The document may hold part of the changes: drop it, the next
		// request reloads it from the store.
		s.drop(m.Key)
		return errAnswer(err)
	}
	e.seq = m.ToSeq
	return &message{Status: statusOK}
}

func (s *server) json(m *message) *message {
	e, ans := s.docAt(m, m.FromSeq)
	if ans != nil {
		return ans
	}
	var heads []crdt.Hash
	if m.Heads != nil {
		hs, err := crdt.ParseHashes(m.Heads)
		if err != nil {
			return errAnswer(err)
		}
		heads = hs
	}
	data, err := e.doc.JSON(heads)
	if err != nil {
		return errAnswer(err)
	}
	at := m.Heads
	if at == nil {
		at = crdt.HashStrings(e.doc.Heads())
	}
	return &message{Status: statusOK, Data: data, Heads: at}
}

func (s *server) save(m *message) *message {
	e, ans := s.docAt(m, m.FromSeq)
	if ans != nil {
		return ans
	}
	return &message{Status: statusOK, Data: e.doc.Save()}
}

func (s *server) changes(m *message) *message {
	doc, err := crdt.LoadDoc(m.Data)
	if err != nil {
		return errAnswer(fmt.Errorf("load snapshot: %w", err))
	}
	chs, err := doc.Changes()
	if err != nil {
		return errAnswer(fmt.Errorf("changes of snapshot: %w", err))
	}
	return &message{Status: statusOK, Data: crdt.Join(chs)}
}

// docAt returns the record's document at seq, loading it from the request's
// base when the worker does not hold it there. It answers "need base" when it
// cannot.
func (s *server) docAt(m *message, seq uint64) (*entry, *message) {
	if el, ok := s.docs[m.Key]; ok {
		e := el.Value.(*entry)
		if e.seq == seq {
			s.lru.MoveToFront(el)
			return e, nil
		}
	}
	if !m.HasBase {
		return nil, &message{Status: statusNeedBase}
	}
	if m.BaseSeq != seq {
		return nil, &message{Status: statusError, Err: fmt.Sprintf("worker: base of %q is at seq %d, want %d", m.Key, m.BaseSeq, seq)}
	}
	doc, err := loadBase(m.BaseSnapshot, m.BaseChanges)
	if err != nil {
		// A base comes from the store, not from a client: whatever is wrong
		// with it is not the pushed change's fault, so it does not map to
		// invalid_change.
		return nil, &message{Status: statusError, Err: fmt.Sprintf("worker: load base of %q at seq %d: %v", m.Key, seq, err)}
	}
	s.drop(m.Key)
	e := &entry{key: m.Key, seq: seq, doc: doc}
	s.docs[m.Key] = s.lru.PushFront(e)
	return e, nil
}

func loadBase(snapshot, changes []byte) (*crdt.Doc, error) {
	doc := crdt.NewDoc()
	if len(snapshot) > 0 {
		d, err := crdt.LoadDoc(snapshot)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		doc = d
	}
	if len(changes) > 0 {
		chs, err := crdt.Split(changes)
		if err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
		if err := doc.Apply(chs); err != nil {
			return nil, fmt.Errorf("changes: %w", err)
		}
	}
	return doc, nil
}

func (s *server) drop(key string) {
	if el, ok := s.docs[key]; ok {
		s.lru.Remove(el)
		delete(s.docs, key)
	}
}

// trim evicts least recently used documents while the worker's RSS is over
// its limit, always keeping the most recently used one. automerge-go's
// memory is C memory, invisible to the Go heap and freed by finalizers, so
// the bound is on measured RSS and eviction is followed by a GC (finalizers
// free the C side) and a return of freed pages to the OS.
func (s *server) trim() {
	if s.limit <= 0 || s.lru.Len() <= 1 {
		return
	}
	rss, err := s.rss()
	if err != nil || rss <= s.limit {
		return
	}
	// How many to evict: the excess over the average footprint of a
	// document, so that one pass usually suffices instead of a GC per
	// document.
	n := s.lru.Len()
	per := (rss - s.base) / int64(n)
	k := n - 1
	if per > 0 {
		if want := int((rss-s.limit)/per) + 1; want < k {
			k = want
		}
	}
	for i := 0; i < k; i++ {
		e := s.lru.Back().Value.(*entry)
		s.drop(e.key)
	}
	runtime.GC()
	debug.FreeOSMemory()
	if after, err := s.rss(); err == nil && after > s.limit && s.lru.Len() <= 1 && !s.warn {
		s.warn = true
		s.log.Warn("worker: memory limit is below what one document needs; caching nothing",
			"limit_bytes", s.limit, "rss_bytes", after)
	}
}
