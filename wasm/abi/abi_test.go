package abi

import (
	"reflect"
	"testing"
)

func TestHeaderMapRoundTrip(t *testing.T) {
	in := []Header{{":method", "GET"}, {"x-empty", ""}, {"x-utf8", "café"}}
	if got := DecodeHeaders(EncodeHeaders(in)); !reflect.DeepEqual(got, in) {
		t.Fatalf("round trip = %v", got)
	}
	if got := DecodeHeaders(EncodeHeaders(nil)); got == nil || len(got) != 0 {
		t.Fatalf("empty map decoded as %v", got)
	}
}

func FuzzDecodeHeaders(f *testing.F) {
	f.Add(EncodeHeaders([]Header{{"a", "b"}}))
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		hs := DecodeHeaders(b) // must not panic on hostile host data
		if hs != nil && !reflect.DeepEqual(DecodeHeaders(EncodeHeaders(hs)), hs) {
			t.Fatal("decoded headers do not round trip")
		}
	})
}
