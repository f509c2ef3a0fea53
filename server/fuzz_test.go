package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dynamerge/dynamerge/crdt"
	"github.com/dynamerge/dynamerge/engine"
	"github.com/dynamerge/dynamerge/protocol"
)

// validatingEngine is the fake engine with the real decoder of pushed
// bytes in front (the parser, then a Tx on an empty record), so that
// fuzzing /v1/sync reaches crdt's validation the way the engine calls it.
type validatingEngine struct {
	*fakeEngine
}

func (v validatingEngine) Sync(ctx context.Context, reqs []engine.DocRequest) ([]engine.DocResult, error) {
	out := make([]engine.DocResult, len(reqs))
	var pass []engine.DocRequest
	var at []int
	for i, r := range reqs {
		out[i].Key = r.Key
		if len(r.Changes) > 0 {
			cs, err := crdt.ParseChanges(r.Changes, crdt.Limits{MaxOps: 1000})
			if err == nil {
				// Against an empty record, as the engine's Tx checks a push.
				_, err = crdt.NewIndex().Begin().Add(cs)
			}
			if err != nil {
				if errors.Is(err, crdt.ErrChunkTooLarge) {
					err = fmt.Errorf("%w: %w", engine.ErrTooLarge, err)
				}
				out[i].Err = err
				continue
			}
		}
		r.Key.ID = "ok-" + r.Key.ID[:min(len(r.Key.ID), 100)] // keep clear of the fake's magic ids
		pass = append(pass, r)
		at = append(at, i)
	}
	res, err := v.fakeEngine.Sync(ctx, pass)
	if err != nil {
		return nil, err
	}
	for j, r := range res {
		r.Key = out[at[j]].Key
		out[at[j]] = r
	}
	return out, nil
}

// FuzzSyncHandler sends arbitrary bodies and tokens to POST /v1/sync
// through the whole middleware chain: the answer is always one of the
// protocol's codes, never 5xx, always JSON, and a 200 has one entry per
// requested doc.
func FuzzSyncHandler(f *testing.F) {
	good := signHS(f, claimsFor("alice", map[string]any{"todos": "rw", "public": "r"}))
	h := newHistory()
	ch := b64(h.edit(f, "x", 1))
	setup, bomb := counterBomb(f, 2000)
	for _, s := range []struct{ body, tok string }{
		{`{"docs":[]}`, good},
		{`{"docs":[]}`, "bad"},
		{syncBody(docJSON("todos", "a", ch)), good},
		{syncBody(docJSON("public", "a", ch)), good},
		{syncBody(docJSON("todos", "a", ch, strings.Repeat("a", 64))), good},
		{syncBody(docJSON("todos", "b", b64(append(append([]byte{}, setup...), bomb...)))), good},
		{syncBody(docJSON("todos", "c", b64(compressedBomb(1<<20)))), good},
		{`{"docs":[{"collection":"todos","id":"a","changes":"hV9KgwAAAAAB"}]}`, good},
		// Issue 18: 50,000 unchained sets of one key in 64 bytes.
		{syncBody(docJSON("todos", "b1", b64(issue18Change(f, "stall-64.bin")))), good},
		{syncBody(docJSON("todos", "b1", b64(append(issue18Change(f, "stall-64.bin"), issue18Change(f, "chained-98.bin")...)))), good},
		{`{"docs":[{"collection":"Todos","id":"a"}]}`, good},
		{`{"docs":[{"collection":"todos","id":"a","have":[1]}]}`, good},
		{`{"docs":null}`, good},
		{`[]`, good},
		{"", good},
	} {
		f.Add(s.body, s.tok)
	}
	eng := validatingEngine{newFakeEngine()}
	srv, err := newServer(Options{Logger: (&syncLog{}).logger(), Authorizer: newTestAuth(f), MaxBodyBytes: 1 << 20, MaxDocsPerSync: 50}, eng)
	if err != nil {
		f.Fatal(err)
	}
	handler := srv.Handler()
	f.Fuzz(func(t *testing.T, body, tok string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/sync", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 400, 401, 403, 413:
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body.String())
		}
		if rec.Code != 200 {
			if errCode(rec.Body.Bytes()) == "" || strings.Contains(rec.Body.String(), "internal") {
				t.Fatalf("error answer %s", rec.Body.String())
			}
			return
		}
		var in struct {
			Docs []json.RawMessage `json:"docs"`
		}
		var out protocol.SyncResponse
		_ = json.Unmarshal([]byte(body), &in)
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("200 answer: %v", err)
		}
		if len(out.Docs) != len(in.Docs) {
			t.Fatalf("%d docs answered for %d", len(out.Docs), len(in.Docs))
		}
		for _, d := range out.Docs {
			if d.Error != nil && d.Error.Code == CodeForbidden && (d.Changes != "" || len(d.Heads) > 0) {
				t.Fatalf("forbidden entry carries data: %+v", d)
			}
		}
	})
}

// FuzzTokenParse: any token string is refused with ErrUnauthorized or
// accepted with a subject; an accepted token never grants a collection its
// claim does not name.
func FuzzTokenParse(f *testing.F) {
	for _, tok := range badTokens(f) {
		f.Add(tok)
	}
	f.Add(signHS(f, claimsFor("alice", map[string]any{"notes-{sub}": "rw", "t-*": "r"})))
	f.Add(signRS(f, "rsa-1", sharedKeys().rsa, claimsFor("bob", map[string]any{"x": "r"})))
	f.Add(signES(f, "ec-1", claimsFor("carol", nil)))
	a := newTestAuth(f)
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := a.Parse(context.Background(), tok)
		if err != nil {
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", err)
			}
			return
		}
		if p.Subject == "" {
			t.Fatal("accepted a token without subject")
		}
		// Whatever was accepted must verify with the jwt package alone.
		if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return testSecret, nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
			if _, err2 := jwt.Parse(tok, func(t *jwt.Token) (any, error) {
				if t.Method.Alg() == "RS256" {
					return &sharedKeys().rsa.PublicKey, nil
				}
				return &sharedKeys().ec.PublicKey, nil
			}, jwt.WithValidMethods([]string{"RS256", "ES256"})); err2 != nil {
				t.Fatalf("accepted a token that does not verify: %v / %v", err, err2)
			}
		}
	})
}

// FuzzGrants: a collections claim either is refused or compiles to grants
// that only ever allow valid collection names matching their pattern.
func FuzzGrants(f *testing.F) {
	f.Add(`{"todos":"rw","public":"r","notes-{sub}":"rw","team-*":"r"}`, "alice", "notes-alice")
	f.Add(`{"*":"r"}`, "x", "anything")
	f.Add(`"{\"a-{sub}\":\"rw\"}"`, "b*", "a-b")
	f.Add(`{"{sub}{sub}*":"rw"}`, "", "zz")
	f.Add(`[1,2]`, "s", "a")
	f.Fuzz(func(t *testing.T, claim, sub, collection string) {
		var v any
		if err := json.Unmarshal([]byte(claim), &v); err != nil {
			return
		}
		grants, err := parseGrants(v, sub)
		if err != nil {
			return
		}
		p := &Principal{Subject: sub, grants: grants}
		if p.Allows(collection, true) && !p.Allows(collection, false) {
			t.Fatal("write without read")
		}
		for _, g := range grants {
			for i := 0; i < len(g.name); i++ {
				if !collectionByte(g.name[i]) {
					t.Fatalf("grant %+v holds %q", g, g.name[i])
				}
			}
		}
	})
}

// FuzzParseJWKS: any key set document parses or fails cleanly, and only
// yields RSA keys of 2048 bits or more and P-256 keys.
func FuzzParseJWKS(f *testing.F) {
	k := sharedKeys()
	f.Add(jwksJSON(rsaJWK("rsa-1", &k.rsa.PublicKey), ecJWK("ec-1", &k.ec.PublicKey)))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseJWKS(b)
		if err != nil {
			return
		}
		for kid, key := range keys {
			if !keyFits(key, "RS256") && !keyFits(key, "ES256") {
				t.Fatalf("key %q of type %T", kid, key)
			}
		}
	})
}
