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

// DecodeHeaders (which decodes in place through appendHeaders) must
// not alias its input: the caller may reuse the buffer.
func TestDecodeHeadersCopiesItsInput(t *testing.T) {
	b := EncodeHeaders([]Header{{"name", "value"}})
	hs := DecodeHeaders(b)
	for i := range b {
		b[i] = 'X'
	}
	if want := []Header{{"name", "value"}}; !reflect.DeepEqual(hs, want) {
		t.Fatalf("headers changed with the input buffer: %v", hs)
	}
}

func TestDecodeHeadersRejectsTruncatedMaps(t *testing.T) {
	full := EncodeHeaders([]Header{{"name", "value"}})
	for n := range len(full) {
		if got := DecodeHeaders(full[:n]); got != nil {
			t.Fatalf("%d of %d bytes decoded as %v", n, len(full), got)
		}
	}
}

// AppendDecoded appends to what dst holds and, for a malformed map, hands
// dst back unchanged: the test host decodes local answers with it into a
// reused slice.
func TestAppendDecoded(t *testing.T) {
	kept := []Header{{"kept", "1"}}
	b := EncodeHeaders([]Header{{"a", "b"}, {"c", "d"}})
	got, ok := AppendDecoded(kept, b)
	if want := []Header{{"kept", "1"}, {"a", "b"}, {"c", "d"}}; !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("AppendDecoded = %v, %v; want %v", got, ok, want)
	}
	got, ok = AppendDecoded(kept, b[:len(b)-1])
	if ok || !reflect.DeepEqual(got, kept) {
		t.Fatalf("truncated map: AppendDecoded = %v, %v; want %v, false", got, ok, kept)
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

func TestPoolReusesAndIsBounded(t *testing.T) {
	var p Pool[int]
	if p.Get() != nil {
		t.Fatal("empty pool returned a context")
	}
	a, b := new(int), new(int)
	p.Put(a)
	p.Put(b)
	if p.Get() != b || p.Get() != a || p.Get() != nil {
		t.Fatal("pool did not return what was put, last in first out")
	}
	for range MaxPooled + 10 {
		p.Put(new(int))
	}
	if len(p.free) != MaxPooled {
		t.Fatalf("pool holds %d, over its bound of %d", len(p.free), MaxPooled)
	}
}
