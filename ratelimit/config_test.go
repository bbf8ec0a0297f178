package ratelimit

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// A configuration in envoyproxy/ratelimit's format, as its README writes
// them: defaults per key, values, nesting, wildcards, unlimited, shadow
// mode and replaces.
const messaging = `domain: messaging
descriptors:
  # Only allow 5 marketing messages a day
  - key: message_type
    value: marketing
    descriptors:
      - key: to_number
        rate_limit:
          unit: day
          requests_per_unit: 5

  # Only allow 100 messages a day to any unique phone number
  - key: to_number
    rate_limit:
      unit: day
      requests_per_unit: 100

  - key: remote_address
    rate_limit:
      name: per-address
      unit: second
      requests_per_unit: 10
  - key: remote_address
    value: 10.0.0.1
    rate_limit:
      unlimited: true

  - key: path
    value: /files/*
    rate_limit: {unit: minute, requests_per_unit: 20}
  - key: path
    value: /shared/*
    share_threshold: true
    rate_limit: {unit: minute, requests_per_unit: 30}

  - key: tier
    value: gold
    shadow_mode: true
    rate_limit:
      name: gold
      replaces: [{name: per-address}]
      unit: HOUR
      requests_per_unit: 1000
`

func desc(kv ...string) *ratelimitv3.RateLimitDescriptor {
	d := &ratelimitv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func mustConfig(t *testing.T, docs ...string) *Config {
	t.Helper()
	var ds []*Domain
	for i, doc := range docs {
		d, err := ParseFile("f"+string(rune('0'+i))+".yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	c, err := NewConfig(ds...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLookupFollowsEnvoyRatelimitsRules(t *testing.T) {
	c := mustConfig(t, messaging)
	for _, tc := range []struct {
		name   string
		d      *ratelimitv3.RateLimitDescriptor
		domain string
		want   string // "" for no limit: "<requests>/<unit>"
	}{
		{"a nested limit under a value", desc("message_type", "marketing", "to_number", "2061111111"), "messaging", "5/DAY"},
		{"the key's default for any value", desc("to_number", "2061111111"), "messaging", "100/DAY"},
		{"an exact value before the key's default", desc("remote_address", "10.0.0.1"), "messaging", "unlimited"},
		{"another value takes the default", desc("remote_address", "10.0.0.2"), "messaging", "10/SECOND"},
		{"a wildcard value", desc("path", "/files/a/b"), "messaging", "20/MINUTE"},
		{"a value the wildcard does not start", desc("path", "/other"), "messaging", ""},
		{"a level without a limit", desc("message_type", "marketing"), "messaging", ""},
		{"more entries than the tree is deep", desc("to_number", "1", "extra", "x"), "messaging", ""},
		{"an unknown key", desc("nope", "x"), "messaging", ""},
		{"an unknown domain", desc("to_number", "1"), "other", ""},
		{"a unit in capitals", desc("tier", "gold"), "messaging", "1000/HOUR"},
	} {
		m := c.Lookup(tc.domain, tc.d)
		got := ""
		switch {
		case m.Limit == nil:
		case m.Limit.Unlimited:
			got = "unlimited"
		default:
			got = strconv.FormatUint(uint64(m.Limit.RequestsPerUnit), 10) + "/" + m.Limit.Unit.String()
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// A limit given in the request overrides the configuration.
	d := desc("to_number", "1")
	d.Limit = &ratelimitv3.RateLimitDescriptor_RateLimitOverride{RequestsPerUnit: 3, Unit: typev3.RateLimitUnit_MINUTE}
	if m := c.Lookup("messaging", d); m.Limit == nil || m.Limit.RequestsPerUnit != 3 || m.Limit.Seconds() != 60 {
		t.Errorf("override: %+v", m.Limit)
	}
}

func TestBadConfigurationsNameTheFileDescriptorAndLine(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"an unknown key", "domain: d\ndescriptors:\n  - key: a\n    rate_limt: {unit: second, requests_per_unit: 1}\n", "line 4: field rate_limt not found"},
		{"no domain", "descriptors: []\n", "domain is required"},
		{"an empty key", "domain: d\ndescriptors:\n  - value: x\n", "bad.yaml:3: descriptors[0]: descriptor has an empty key"},
		{"an invalid unit", "domain: d\ndescriptors:\n  - key: a\n    rate_limit:\n      unit: fortnight\n      requests_per_unit: 1\n", `bad.yaml:5: descriptors[0].rate_limit.unit: "fortnight": want second`},
		{"no unit", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {requests_per_unit: 1}\n", `descriptors[0].rate_limit.unit: "": want second`},
		{"a unit with unlimited", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unlimited: true, unit: second}\n", "an unlimited rate limit takes no unit"},
		{"a duplicate descriptor", "domain: d\ndescriptors:\n  - key: a\n    value: b\n  - key: a\n    value: b\n", `bad.yaml:5: descriptors[1]: duplicate descriptor "d.a_b"`},
		{"a nested duplicate", "domain: d\ndescriptors:\n  - key: a\n    descriptors:\n      - key: b\n      - key: b\n", `descriptors[0].descriptors[1]: duplicate descriptor "d.a.b"`},
		{"an empty replaces", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {unit: second, requests_per_unit: 1, replaces: [{name: ''}]}\n", "replaces[0]: an empty name"},
		{"a limit replacing itself", "domain: d\ndescriptors:\n  - key: a\n    rate_limit: {name: x, unit: second, requests_per_unit: 1, replaces: [{name: x}]}\n", "a limit cannot replace itself"},
		{"share_threshold without a wildcard", "domain: d\ndescriptors:\n  - key: a\n    value: b\n    share_threshold: true\n", "share_threshold: only for a wildcard value"},
		{"not YAML", "domain: [\n", "bad.yaml"},
	} {
		_, err := ParseFile("bad.yaml", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v\nwant mention of %q", tc.name, err, tc.want)
		}
	}
}

func TestADomainDefinedTwiceIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"a.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("domain: same\ndescriptors: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), `domain "same" is already defined in`) {
		t.Fatalf("err = %v", err)
	}
}

func TestADirectoryLoadsEveryYAMLFileAndSkipsTheRest(t *testing.T) {
	dir := t.TempDir()
	for n, body := range map[string]string{
		"a.yaml":        "domain: a\ndescriptors: [{key: k, rate_limit: {unit: second, requests_per_unit: 1}}]\n",
		"b.yml":         "domain: b\ndescriptors: []\n",
		".hidden.yaml":  "not: [valid",
		"README.md":     "# notes",
		"..data/x.yaml": "not: [valid",
	} {
		p := filepath.Join(dir, n)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Has("a") || !c.Has("b") || len(c.Domains()) != 2 {
		t.Fatalf("domains %v", c.Domains())
	}
	if _, err := Load(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing path loaded")
	}
}

// The quickstart's limits load, and match what its mesh sends.
func TestTheQuickstartLimitsLoad(t *testing.T) {
	c, err := Load("../examples/quickstart/ratelimit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := c.Lookup("quickstart", desc("route", "payments/charge", "caller", "spiffe://meshguard.local/ns/demo/sa/orders"))
	if m.Limit == nil || m.Limit.RequestsPerUnit != 20 {
		t.Fatalf("per caller: %+v", m.Limit)
	}
	if m := c.Lookup("quickstart", desc("route", "payments/charge", "principal", `Workload::"spiffe://meshguard.local/ns/demo/sa/batch"`)); m.Limit == nil || !m.Limit.Unlimited {
		t.Fatalf("the batch job: %+v", m.Limit)
	}
}
