package dynamo

// The registry of processes in fan-out mode, and the messages between them
// (fanout.go). A process registers as the item (ConfigPK, "peer#<id>")
// with its URL and an expiry, renews it every third of PeerTTL, and reads
// the others every PeerRefresh (one Query of one partition: with 100
// processes, 100 items of ~100 bytes, about 1.5 read units).

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/dynamerge/dynamerge/store"
)

// Attributes of a registration item (ConfigPK, SKPeerPrefix + id).
const (
	// SKPeerPrefix starts the sort key of a process's registration.
	SKPeerPrefix = "peer#"
	// AttrPeerURL is where the process takes messages (string).
	AttrPeerURL = "url"
	// AttrExpires is when a registration or a lease lapses unless renewed,
	// Unix milliseconds (number).
	AttrExpires = "exp"
	// AttrTTL is AttrExpires plus a day in Unix seconds, for the table's
	// optional time-to-live: registrations of processes that died are
	// removed by DynamoDB for free.
	AttrTTL = "ttl"
	// maxPeerBody bounds a message's body.
	maxPeerBody = 8 << 20
	// peerRetries is how often a message is resent before the sender gives
	// up (the receiver then sees a gap).
	peerRetries = 3
)

// register writes this process's registration.
func (s *Store) register(ctx context.Context) error {
	f := &s.fan
	exp := time.Now().Add(f.opts.PeerTTL)
	cctx, cancel := s.callContext(ctx)
	defer cancel()
	out, err := s.api.UpdateItem(cctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       itemKey(ConfigPK, SKPeerPrefix+f.id),
		UpdateExpression:          aws.String("SET #url = :url, #exp = :exp, #ttl = :ttl"),
		ExpressionAttributeNames:  map[string]string{"#url": AttrPeerURL, "#exp": AttrExpires, "#ttl": AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{":url": &types.AttributeValueMemberS{Value: f.opts.URL}, ":exp": num(uint64(exp.UnixMilli())), ":ttl": num(uint64(exp.Add(24 * time.Hour).Unix()))},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	})
	if err != nil {
		return fmt.Errorf("fanout: register: %w", classify(err))
	}
	s.units.addOne(opFanout, true, out.ConsumedCapacity)
	return nil
}

// deregister removes the registration (best effort: it lapses anyway).
func (s *Store) deregister() {
	cctx, cancel := s.callContext(context.Background())
	defer cancel()
	s.api.BatchWriteItem(cctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{
		s.table: {{DeleteRequest: &types.DeleteRequest{Key: itemKey(ConfigPK, SKPeerPrefix+s.fan.id)}}},
	}})
}

// peerLoop renews the registration and re-reads the registry until ctx is
// done.
func (s *Store) peerLoop(ctx context.Context) {
	f := &s.fan
	refresh := time.NewTicker(f.opts.PeerRefresh)
	defer refresh.Stop()
	renew := time.NewTicker(f.opts.PeerTTL / 3)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			if err := s.register(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("dynamo: fanout: renewing the registration failed", "err", err)
			}
		case <-refresh.C:
			if err := s.refreshPeers(ctx); err != nil && ctx.Err() == nil {
				f.log.Warn("dynamo: fanout: reading the other processes failed", "err", err)
			}
		}
		if s.closed.Load() {
			f.stop()
		}
	}
}

// refreshPeers reads the registry and keeps one sender per live process.
func (s *Store) refreshPeers(ctx context.Context) error {
	f := &s.fan
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :p)"),
		ExpressionAttributeNames:  map[string]string{"#pk": AttrPK, "#sk": AttrSK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: ConfigPK}, ":p": &types.AttributeValueMemberS{Value: SKPeerPrefix}},
		ReturnConsumedCapacity:    types.ReturnConsumedCapacityTotal,
	}
	live := make(map[string]string)
	now := uint64(time.Now().UnixMilli())
	for {
		out, err := s.queryPage(ctx, opFanout, in)
		if err != nil {
			return fmt.Errorf("fanout: list processes: %w", err)
		}
		for _, it := range out.Items {
			id := strings.TrimPrefix(skOf(it), SKPeerPrefix)
			url, _ := it[AttrPeerURL].(*types.AttributeValueMemberS)
			exp, err := getNum(it, AttrExpires)
			if id == f.id || url == nil || err != nil || exp < now {
				continue
			}
			live[id] = url.Value
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return nil
	}
	for id, p := range f.peers {
		if u, ok := live[id]; !ok || u != p.base {
			p.close()
			delete(f.peers, id)
		}
	}
	for id, u := range live {
		if f.peers[id] == nil {
			f.peers[id] = newSender(s, u)
		}
	}
	return nil
}

// sendAll queues changes for every peer.
func (s *Store) sendAll(cs []store.Change) {
	f := &s.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.peers {
		p.push(cs)
	}
}

// peerMessage is the body of a message: batch N of sender From. A receiver
// that sees a batch number skip knows it missed changes.
type peerMessage struct {
	From    string       `json:"from"`
	N       uint64       `json:"n"`
	Changes []peerChange `json:"changes"`
}

type peerChange struct {
	Collection string   `json:"c,omitempty"`
	ID         string   `json:"i,omitempty"`
	Seq        uint64   `json:"s,omitempty"`
	Heads      []string `json:"h,omitempty"`
	Deleted    bool     `json:"d,omitempty"`
	Gap        bool     `json:"g,omitempty"`
}

// sender delivers changes to one peer, in order, batching whatever queued
// up while the previous message was in flight.
type sender struct {
	s    *Store
	base string // the peer's registered URL
	url  string // where its messages go
	q    changeQueue
	n    uint64 // batches numbered so far; only run touches it
	done chan struct{}

	sent, dropped atomic.Uint64
}

func newSender(s *Store, url string) *sender {
	p := &sender{s: s, base: url, url: strings.TrimSuffix(url, "/") + PeerPath, q: newChangeQueue(), done: make(chan struct{})}
	go p.run()
	return p
}

func (p *sender) push(cs []store.Change) {
	if !p.q.push(cs...) {
		p.dropped.Add(uint64(len(cs)))
	}
}

func (p *sender) close() { close(p.done) }

func (p *sender) run() {
	for {
		select {
		case <-p.q.wake:
		case <-p.done:
			return
		}
		for {
			q, lost := p.q.take()
			if lost {
				// The batch number skips: the receiver reports a gap.
				p.n++
			}
			if len(q) == 0 {
				break
			}
			p.n++
			if p.post(p.n, q) {
				p.sent.Add(uint64(len(q)))
			} else {
				p.dropped.Add(uint64(len(q)))
			}
		}
	}
}

// post sends one batch, retrying a few times; false when it gave up.
func (p *sender) post(n uint64, q []store.Change) bool {
	f := &p.s.fan
	msg := peerMessage{From: f.id, N: n, Changes: make([]peerChange, len(q))}
	for i, c := range q {
		msg.Changes[i] = peerChange{Collection: c.Key.Collection, ID: c.Key.ID, Seq: c.Seq, Heads: c.Heads, Deleted: c.Deleted, Gap: c.Gap}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return false
	}
	for attempt := range peerRetries {
		req, err := http.NewRequest(http.MethodPost, p.url, bytes.NewReader(body))
		if err != nil {
			return false
		}
		req.Header.Set("Authorization", "Bearer "+f.opts.Secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.opts.Client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return true
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		select {
		case <-p.done:
			return false
		case <-time.After(backoff(attempt + 2)):
		}
		if attempt == peerRetries-1 {
			f.log.Warn("dynamo: fanout: a process did not take its messages; it will see a gap", "url", p.url, "err", err)
		}
	}
	return false
}

// FanoutHandler serves PeerPath: the messages of the other processes. Serve
// it on the address FanoutOptions.URL names, apart from the public API
// (processes authenticate with the shared secret; clients never need it).
func (s *Store) FanoutHandler() http.Handler {
	var mu sync.Mutex
	last := make(map[string]uint64) // batch number seen last, per sender
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := &s.fan
		if r.URL.Path != PeerPath {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f.mu.Lock()
		on, secret := f.on, f.opts.Secret
		f.mu.Unlock()
		if !on {
			http.Error(w, "not watching", http.StatusServiceUnavailable)
			return
		}
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var msg peerMessage
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPeerBody))
		if err := dec.Decode(&msg); err != nil || msg.From == "" || msg.N == 0 {
			http.Error(w, "bad message", http.StatusBadRequest)
			return
		}
		cs := make([]store.Change, 0, len(msg.Changes))
		for _, pc := range msg.Changes {
			if pc.Gap {
				cs = append(cs, store.Change{Gap: true})
				continue
			}
			c := store.Change{Key: store.Key{Collection: pc.Collection, ID: pc.ID}, Seq: pc.Seq, Heads: pc.Heads, Deleted: pc.Deleted}
			if c.Key.Validate() != nil || c.Seq == 0 {
				http.Error(w, "bad change "+strconv.Quote(c.Key.String()), http.StatusBadRequest)
				return
			}
			cs = append(cs, c)
		}
		mu.Lock()
		prev, known := last[msg.From]
		if !known || msg.N > prev {
			last[msg.From] = msg.N
		}
		mu.Unlock()
		if known && msg.N <= prev {
			w.WriteHeader(http.StatusNoContent) // a resend of what we have
			return
		}
		if known && msg.N > prev+1 {
			s.deliver(store.Change{Gap: true})
		}
		f.lease.received.Add(uint64(len(cs)))
		for _, c := range cs {
			s.deliver(c)
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
