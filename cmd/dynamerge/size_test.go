package main

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"1024", 1024, false},
		{"16MiB", 16 << 20, false},
		{"16mib", 16 << 20, false},
		{"16M", 16 << 20, false},
		{"16MB", 16_000_000, false},
		{"4 KiB", 4 << 10, false},
		{"3g", 3 << 30, false},
		{"1TiB", 1 << 40, false},
		{"12B", 12, false},
		{"", 0, true},
		{"MiB", 0, true},
		{"-1", 0, true},
		{"1.5MiB", 0, true},
		{"10 bytes", 0, true},
		{"9223372036854775807", 1<<63 - 1, false},
		{"9223372036854775808", 0, true},
		{"8388608TiB", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err != nil) != tt.err {
				t.Fatalf("ParseSize(%q) err=%v, want error %v", tt.in, err, tt.err)
			}
			if got != tt.want {
				t.Fatalf("ParseSize(%q)=%d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestFormatSizeRoundTrip(t *testing.T) {
	for _, n := range []int64{0, 1, 1000, 1 << 10, 16 << 20, 3 << 30, 1<<20 + 1} {
		s := formatSize(n)
		got, err := ParseSize(s)
		if err != nil || got != n {
			t.Errorf("ParseSize(formatSize(%d)=%q)=%d, %v", n, s, got, err)
		}
	}
}
