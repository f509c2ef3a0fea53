package schema

import (
	"bytes"
	"encoding/base64"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/dynamerge/dynamerge/protocol"
)

// spec is the part of an OpenAPI document the tests look at; everything
// else is kept as generic YAML.
type spec struct {
	OpenAPI    string                          `yaml:"openapi"`
	Paths      map[string]map[string]operation `yaml:"paths"`
	Components map[string]map[string]yaml.Node `yaml:"components"`
	raw        map[string]any
}

type operation struct {
	OperationID string               `yaml:"operationId"`
	Responses   map[string]yaml.Node `yaml:"responses"`
	Parameters  []yaml.Node          `yaml:"parameters"`
}

func loadSpec(tb testing.TB) *spec {
	tb.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	var s spec
	if err := yaml.Unmarshal(b, &s); err != nil {
		tb.Fatalf("openapi.yaml: %v", err)
	}
	if err := yaml.Unmarshal(b, &s.raw); err != nil {
		tb.Fatalf("openapi.yaml: %v", err)
	}
	return &s
}

// httpMethods are the HTTP methods an OpenAPI path item may hold.
var httpMethods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true, "OPTIONS": true}

// protocolRoutes returns "METHOD /path" of every route of the protocol
// package, which the server registers (server's TestRoutesAreProtocol).
func protocolRoutes() []string {
	var routes []string
	for _, r := range protocol.Routes {
		routes = append(routes, r.Method+" "+r.Path)
	}
	sort.Strings(routes)
	return routes
}

// specRoutes returns "METHOD /path" for every operation of the document.
func (s *spec) routes() []string {
	var out []string
	for path, ops := range s.Paths {
		for method := range ops {
			if httpMethods[strings.ToUpper(method)] {
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}

// lookup follows a path of map keys in the raw document.
func (s *spec) lookup(keys ...string) any {
	var cur any = s.raw
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func (s *spec) enum(keys ...string) []string {
	list, _ := s.lookup(append(keys, "enum")...).([]any)
	var out []string
	for _, v := range list {
		out = append(out, v.(string))
	}
	sort.Strings(out)
	return out
}

// resolve follows a {$ref: "#/a/b"} map to its target.
func (s *spec) resolve(tb testing.TB, v any) map[string]any {
	tb.Helper()
	m, _ := v.(map[string]any)
	for m != nil {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		target, _ := s.lookup(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...).(map[string]any)
		if target == nil {
			tb.Fatalf("$ref %q does not resolve", ref)
		}
		m = target
	}
	return m
}

func TestOpenAPIVersion(t *testing.T) {
	s := loadSpec(t)
	if got, want := s.OpenAPI, "3.1.0"; got != want {
		t.Fatalf("openapi=%q, want %q", got, want)
	}
}

// TestRoutesMatchServer: every route the server registers is documented and
// every documented route exists. The static catch-all "/*" is documented as
// "/", which describes it.
func TestRoutesMatchServer(t *testing.T) {
	s := loadSpec(t)
	documented := s.routes()
	for _, r := range protocolRoutes() {
		if !slices.Contains(documented, r) {
			t.Errorf("route %q is not in openapi.yaml", r)
		}
	}
	registered := append(protocolRoutes(), "GET /", "HEAD /") // and the demo app
	for _, r := range documented {
		if !slices.Contains(registered, r) {
			t.Errorf("openapi.yaml documents %q, which the server does not register", r)
		}
	}
}

// TestErrorCodesMatchServer: the ErrorCode enum is exactly the server's
// Code* constants, and the per-doc codes are among them.
func TestErrorCodesMatchServer(t *testing.T) {
	s := loadSpec(t)
	codes := protocol.Codes
	if got := s.enum("components", "schemas", "ErrorCode"); !slices.Equal(got, codes) {
		t.Errorf("ErrorCode enum = %v, want protocol.Codes %v", got, codes)
	}
	statuses, _ := s.lookup("components", "schemas", "ErrorCode", "x-status").(map[string]any)
	for code, st := range statuses {
		if !slices.Contains(codes, code) {
			t.Errorf("x-status names unknown code %q", code)
		}
		if n, ok := st.(int); !ok || n != protocol.Status(code) {
			t.Errorf("x-status[%s]=%v, want protocol.Status %d", code, st, protocol.Status(code))
		}
	}
	for _, code := range codes {
		if _, ok := statuses[code]; !ok && protocol.Status(code) != 0 {
			t.Errorf("x-status lacks %s (%d)", code, protocol.Status(code))
		}
	}
	if got := s.enum("components", "schemas", "DocError", "properties", "code"); !slices.Equal(got, protocol.DocCodes) {
		t.Errorf("DocError codes = %v, want protocol.DocCodes %v", got, protocol.DocCodes)
	}
	for _, c := range s.enum("components", "schemas", "DocError", "properties", "code") {
		if !slices.Contains(codes, c) {
			t.Errorf("DocError code %q is not a server code", c)
		}
	}
}

// TestProtocolCodes: the codes PROTOCOL.md lists, per doc and per request,
// are all in the document (a copy of that list, since PROTOCOL.md lives
// outside the module).
func TestProtocolCodes(t *testing.T) {
	s := loadSpec(t)
	all := s.enum("components", "schemas", "ErrorCode")
	perDoc := s.enum("components", "schemas", "DocError", "properties", "code")
	tests := []struct {
		list []string
		want []string
	}{
		{perDoc, []string{"forbidden", "invalid_change", "missing_deps", "too_large", "gone"}},
		{all, []string{"bad_request", "invalid_id", "unauthorized", "too_large", "rate_limited", "unavailable", "not_found", "forbidden", "deleted", "gone"}},
	}
	for _, tt := range tests {
		for _, c := range tt.want {
			if !slices.Contains(tt.list, c) {
				t.Errorf("code %q missing from %v", c, tt.list)
			}
		}
	}
	if !slices.Equal(perDoc, []string{"forbidden", "gone", "invalid_change", "missing_deps", "too_large"}) {
		t.Errorf("DocError codes %v, want exactly PROTOCOL.md's five", perDoc)
	}
}

// TestErrorResponses: every 4xx/5xx answer has the error body, and the
// retryable ones (429, 503) carry Retry-After, as PROTOCOL.md requires.
func TestErrorResponses(t *testing.T) {
	s := loadSpec(t)
	errResp := s.lookup("components", "schemas", "ErrorResponse")
	if errResp == nil {
		t.Fatal("no ErrorResponse schema")
	}
	for path, ops := range s.Paths {
		for method, op := range ops {
			for status := range op.Responses {
				n, err := strconv.Atoi(status)
				if err != nil {
					t.Errorf("%s %s: response %q is not a status code", method, path, status)
					continue
				}
				if n < 400 {
					continue
				}
				name := method + " " + path + " " + status
				resp := s.resolve(t, s.lookup("paths", path, method, "responses", status))
				content, _ := resp["content"].(map[string]any)
				js, _ := content["application/json"].(map[string]any)
				switch {
				case method == "head" && content != nil:
					t.Errorf("%s: a HEAD answer has no body", name)
					continue
				case method == "head":
				case js == nil:
					t.Errorf("%s: no application/json error body", name)
					continue
				}
				if js != nil && !mentionsRef(js["schema"], "#/components/schemas/ErrorResponse") {
					t.Errorf("%s: body is not an ErrorResponse", name)
				}
				if n == 429 || n == 503 {
					headers, _ := resp["headers"].(map[string]any)
					if headers["Retry-After"] == nil {
						t.Errorf("%s: no Retry-After header", name)
					}
				}
			}
		}
	}
}

// mentionsRef reports whether ref appears anywhere in v.
func mentionsRef(v any, ref string) bool {
	switch x := v.(type) {
	case map[string]any:
		if x["$ref"] == ref {
			return true
		}
		for _, e := range x {
			if mentionsRef(e, ref) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if mentionsRef(e, ref) {
				return true
			}
		}
	}
	return false
}

// TestRefsResolve: no dangling $ref anywhere.
func TestRefsResolve(t *testing.T) {
	s := loadSpec(t)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") {
					t.Errorf("$ref %q is not local", ref)
				} else if s.lookup(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...) == nil {
					t.Errorf("$ref %q does not resolve", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(s.raw)
}

// TestPatterns: the id, collection and hash patterns are the protocol's,
// and they accept and refuse what PROTOCOL.md says.
func TestPatterns(t *testing.T) {
	s := loadSpec(t)
	tests := []struct {
		schema string
		want   string
		ok     []string
		bad    []string
	}{
		{"Collection", protocol.CollectionPattern, []string{"todos", "a", "0-x_y"}, []string{"", "Todos", "-x", strings.Repeat("a", 65)}},
		{"ID", protocol.IDPattern, []string{"0b9f6c1e-0d7a-4a57-9a55-3f1f3d0c2b7e", "X"}, []string{"", "a/b", "a.b", strings.Repeat("a", 129)}},
		{"Hash", protocol.HashPattern, []string{strings.Repeat("ab", 32)}, []string{strings.Repeat("AB", 32), strings.Repeat("a", 63)}},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			got, _ := s.lookup("components", "schemas", tt.schema, "pattern").(string)
			if got != tt.want {
				t.Fatalf("pattern=%q, want %q", got, tt.want)
			}
			re := regexp.MustCompile(got)
			for _, v := range tt.ok {
				if !re.MatchString(v) {
					t.Errorf("%q refused", v)
				}
			}
			for _, v := range tt.bad {
				if re.MatchString(v) {
					t.Errorf("%q accepted", v)
				}
			}
		})
	}
}

// TestSyncExample: the example change is real Automerge change bytes
// (magic 85 6f 4a 83, change chunk type 1), in standard padded base64.
func TestSyncExample(t *testing.T) {
	s := loadSpec(t)
	docs, _ := s.lookup("paths", "/v1/sync", "post", "requestBody", "content", "application/json", "example", "docs").([]any)
	if len(docs) == 0 {
		t.Fatal("no sync request example")
	}
	ch, _ := docs[0].(map[string]any)["changes"].(string)
	b, err := base64.StdEncoding.Strict().DecodeString(ch)
	if err != nil {
		t.Fatalf("example changes are not standard base64: %v", err)
	}
	if len(b) < 9 || !bytes.Equal(b[:4], []byte{0x85, 0x6f, 0x4a, 0x83}) || b[8] != 1 {
		t.Fatalf("example changes % x... are not an Automerge change chunk", b[:min(len(b), 9)])
	}
}
