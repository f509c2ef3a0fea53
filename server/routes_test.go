package server

import (
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/dynamerge/dynamerge/protocol"
)

// TestRoutesAreProtocol: the server registers exactly the protocol
// package's routes (which the schema tests hold openapi.yaml to), and the
// demo app's static files.
func TestRoutesAreProtocol(t *testing.T) {
	srv, err := newServer(Options{}, newFakeEngine())
	if err != nil {
		t.Fatal(err)
	}
	param := regexp.MustCompile(`:([A-Za-z_][A-Za-z0-9_]*)`)
	var got []string
	for _, r := range srv.echo.Routes() {
		if r.Path == "/" || r.Path == "/*" {
			continue // the demo app
		}
		got = append(got, r.Method+" "+param.ReplaceAllString(r.Path, "{$1}"))
	}
	var want []string
	for _, r := range protocol.Routes {
		want = append(want, r.Method+" "+r.Path)
	}
	sort.Strings(got)
	sort.Strings(want)
	if got = slices.Compact(got); !slices.Equal(got, want) {
		t.Errorf("registered routes\n%v\nwant protocol.Routes\n%v", got, want)
	}
}
