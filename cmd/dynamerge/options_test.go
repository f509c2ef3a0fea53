package main

import "testing"

func TestEnvName(t *testing.T) {
	if got, want := envName("max-body-bytes"), "DYNAMERGE_MAX_BODY_BYTES"; got != want {
		t.Fatalf("envName()=%q, want %q", got, want)
	}
}
