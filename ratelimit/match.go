package ratelimit

import (
	"fmt"
	"strconv"
	"strings"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

// Config is every domain loaded, immutable once built.
type Config struct {
	domains map[string]*Domain
}

// NewConfig assembles domains; a domain defined twice is an error naming
// both files.
func NewConfig(domains ...*Domain) (*Config, error) {
	c := &Config{domains: make(map[string]*Domain, len(domains))}
	for _, d := range domains {
		if prev, ok := c.domains[d.Name]; ok {
			return nil, fmt.Errorf("%s: domain %q is already defined in %s", d.File, d.Name, prev.File)
		}
		c.domains[d.Name] = d
	}
	return c, nil
}

// Has reports whether domain is configured.
func (c *Config) Has(domain string) bool {
	_, ok := c.domains[domain]
	return ok
}

// Domains lists the domain names.
func (c *Config) Domains() []string {
	out := make([]string, 0, len(c.domains))
	for n := range c.domains {
		out = append(out, n)
	}
	return out
}

// Match is the limit that applies to one request descriptor, if any.
type Match struct {
	Limit *Limit
	// shared[i], when set, replaces entry i's value in the counter key: a
	// share_threshold wildcard matched it.
	shared []string
}

// Lookup finds the limit for one descriptor of a request, as
// envoyproxy/ratelimit does: walk the entries level by level, taking the
// child with the entry's key and value, else a wildcard value the value
// starts with, else the key's default (no value); the limit of the node
// the last entry reaches applies. A descriptor with a limit of its own (the
// route's override) uses it. No match: no limit.
func (c *Config) Lookup(domain string, d *ratelimitv3.RateLimitDescriptor) Match {
	if o := d.GetLimit(); o != nil {
		return Match{Limit: overrideLimit(o)}
	}
	dom := c.domains[domain]
	if dom == nil {
		return Match{}
	}
	n := &dom.root
	var m Match
	entries := d.GetEntries()
	for i, e := range entries {
		next, pattern := n.child(e.GetKey(), e.GetValue())
		if next == nil {
			return Match{}
		}
		if pattern != "" {
			if m.shared == nil {
				m.shared = make([]string, len(entries))
			}
			m.shared[i] = pattern
		}
		if i == len(entries)-1 {
			m.Limit = next.limit
			if m.Limit == nil {
				return Match{}
			}
			return m
		}
		if len(next.children) == 0 {
			return Match{}
		}
		n = next
	}
	return Match{}
}

// child finds the node for one entry; pattern is set when a share_threshold
// wildcard matched.
func (n *node) child(key, value string) (*node, string) {
	kn := n.children[key]
	if kn != nil {
		if c := kn.byValue[value]; c != nil {
			return c, ""
		}
	}
	for _, w := range n.wildcards {
		if w.key == key && strings.HasPrefix(value, w.prefix) {
			return w.node, w.node.sharePattern
		}
	}
	if kn != nil && kn.any != nil {
		return kn.any, ""
	}
	return nil, ""
}

func overrideLimit(o *ratelimitv3.RateLimitDescriptor_RateLimitOverride) *Limit {
	u := rlsv3.RateLimitResponse_RateLimit_Unit(o.GetUnit())
	l := &Limit{Unit: u, RequestsPerUnit: o.GetRequestsPerUnit(), Path: "(override)"}
	l.status = &rlsv3.RateLimitResponse_RateLimit{RequestsPerUnit: l.RequestsPerUnit, Unit: u}
	l.limitText = strconv.FormatUint(uint64(l.RequestsPerUnit), 10)
	return l
}
