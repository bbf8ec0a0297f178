package memo

import "testing"

func TestMapIsBoundedAndBuildsOncePerKey(t *testing.T) {
	c := New[int, string](8)
	builds := 0
	get := func(k int) string {
		return c.GetOrBuild(k, func() string {
			builds++
			return string(rune('a' + k%26))
		})
	}
	for range 3 {
		for k := range 5 {
			if v := get(k); v != string(rune('a'+k)) {
				t.Fatalf("get(%d) = %q", k, v)
			}
		}
	}
	if builds != 5 {
		t.Fatalf("%d builds for 5 keys, want 5", builds)
	}
	for k := range 1000 {
		get(k)
		if c.Len() > 8 {
			t.Fatalf("%d entries, over the bound of 8", c.Len())
		}
	}
	if v := get(999); v != string(rune('a'+999%26)) {
		t.Fatalf("get(999) after churn = %q", v)
	}
}

func TestGetBytesFindsStringKeys(t *testing.T) {
	c := New[string, int](4)
	key := []byte("k1")
	c.Put(string(key), 1)
	key[1] = '2' // Put kept its own copy
	if _, ok := GetBytes(c, key); ok {
		t.Fatal("found k2, never put")
	}
	if v, ok := GetBytes(c, []byte("k1")); !ok || v != 1 {
		t.Fatalf("GetBytes(k1) = %d, %v", v, ok)
	}
}
