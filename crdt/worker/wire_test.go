package worker

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestMessage_RoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    message
	}{
		{"empty", message{}},
		{"apply with base", message{ID: 1 << 40, Op: opApply, Key: "todos/0b9f", FromSeq: 7, ToSeq: 8,
			HasBase: true, BaseSeq: 7, BaseSnapshot: []byte{0, 1, 2}, BaseChanges: []byte("chunks"), Data: bytes.Repeat([]byte{0x85}, 1000)}},
		{"json answer", message{ID: 3, Op: opJSON, Status: statusOK, Data: []byte(`{"a":1}`), Heads: []string{"aa", "bb"}}},
		{"error answer", message{ID: 4, Op: opApply, Status: statusInvalid, Err: "crdt: invalid change: chunk 0"}},
		{"hello", message{ID: 5, Op: opHello, Limit: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			buf.Write(tc.m.encode())
			buf.Write(tc.m.encode()) // frames follow each other without loss
			r := bufio.NewReader(&buf)
			for i := range 2 {
				got, err := readMessage(r)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !reflect.DeepEqual(*got, tc.m) {
					t.Fatalf("frame %d: got %+v, want %+v", i, *got, tc.m)
				}
			}
			if _, err := readMessage(r); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last frame: %v, want io.EOF", err)
			}
		})
	}
}

func TestMessage_Malformed(t *testing.T) {
	good := (&message{ID: 9, Op: opSave, Key: "k", Heads: []string{"h"}}).encode()
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"truncated payload", good[:len(good)-1], io.ErrUnexpectedEOF},
		{"truncated length", good[:2], io.ErrUnexpectedEOF},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, errFrame},
		{"short payload", []byte{0, 0, 0, 1, 0}, errFrame},
		{"trailing byte in payload", append(append([]byte{0, 0, 0, byte(len(good) - 3)}, good[4:]...), 0), errFrame},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readMessage(bufio.NewReader(bytes.NewReader(tc.in)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("readMessage error=%v, want %v", err, tc.want)
			}
		})
	}
}

func TestStderrWriter(t *testing.T) {
	var out bytes.Buffer
	w := newStderrWriter(&out, "w[0]: ")
	for _, s := range []string{"starting\npart", "ial line\n", "thread '<unnamed>' panicked at 'can only compare map keys'\n", "SIGABRT: abort\n", "goroutine 1 [running]:\n"} {
		if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q)=%d, %v", s, n, err)
		}
	}
	if got, want := out.String(), "w[0]: starting\nw[0]: partial line\n"; !strings.HasPrefix(got, want) {
		t.Fatalf("output %q, want it to start with %q", got, want)
	}
	if got, want := w.Tail(), "thread '<unnamed>' panicked at 'can only compare map keys' | SIGABRT: abort"; got != want {
		t.Fatalf("Tail()=%q, want %q", got, want)
	}
	if got := w.Tail(); got != "" {
		t.Fatalf("second Tail()=%q, want it forgotten", got)
	}
	w.Write([]byte("plain exit\n"))
	if got, want := w.Tail(), "plain exit"; got != want {
		t.Fatalf("Tail() without a panic=%q, want %q", got, want)
	}
}
