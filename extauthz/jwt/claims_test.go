package jwt

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader([]byte(s)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestClaimsRecordMapsJSONToCedar(t *testing.T) {
	m := decode(t, `{
		"sub": "alice", "admin": true, "n": 42, "big": 12345678901234567890,
		"price": 12.5, "tiny": 0.00001, "exp10": 1e3, "nothing": null,
		"groups": ["a", null, "b"], "addr": {"city": "Lyon", "zip": null}
	}`)
	rec, dropped := ClaimsRecord(m)
	want := map[string]cedar.Value{
		"sub":   cedar.String("alice"),
		"admin": cedar.Boolean(true),
		"n":     cedar.Long(42),
	}
	for k, v := range want {
		got, ok := rec.Get(cedar.String(k))
		if !ok || !got.Equal(v) {
			t.Errorf("%s = %v, want %v", k, got, v)
		}
	}
	price, _ := types.ParseDecimal("12.5")
	if got, ok := rec.Get("price"); !ok || !got.Equal(price) {
		t.Errorf("price = %v, want decimal 12.5", got)
	}
	for _, k := range []string{"big", "tiny", "exp10", "nothing"} {
		if _, ok := rec.Get(cedar.String(k)); ok {
			t.Errorf("%s should be dropped (no exact Cedar form, or null)", k)
		}
	}
	if g, _ := rec.Get("groups"); !g.Equal(cedar.NewSet(cedar.String("a"), cedar.String("b"))) {
		t.Errorf("groups = %v, want [a b] with the null dropped", g)
	}
	addr, _ := rec.Get("addr")
	if r, ok := addr.(cedar.Record); !ok || r.Len() != 1 {
		t.Errorf("addr = %v, want a record with only city", addr)
	}
	if dropped != 3 { // big, tiny, exp10; nulls are not counted as loss
		t.Errorf("dropped = %d, want 3", dropped)
	}
}

func TestClaimsRecordBoundsDepth(t *testing.T) {
	deep := `{"a":` + string(bytes.Repeat([]byte(`{"a":`), 20)) + `1` + string(bytes.Repeat([]byte(`}`), 21))
	rec, dropped := ClaimsRecord(decode(t, deep))
	if dropped == 0 || rec.Len() != 1 {
		t.Fatalf("deep nesting not bounded: dropped=%d", dropped)
	}
}

func TestRoles(t *testing.T) {
	m := decode(t, `{"roles":["admin","", 7, "staff"], "scope":"read write", "realm_access":{"roles":["ops"]}}`)
	cases := map[string][]string{
		"roles":              {"admin", "staff"},
		"scope":              {"read", "write"},
		"realm_access.roles": {"ops"},
		"missing":            nil,
		"roles.x":            nil,
	}
	for path, want := range cases {
		got := Roles(m, path)
		if len(got) != len(want) {
			t.Errorf("Roles(%q) = %v, want %v", path, got, want)
			continue
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("Roles(%q) = %v, want %v", path, got, want)
			}
		}
	}
}
