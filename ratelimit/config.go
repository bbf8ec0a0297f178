// Package ratelimit is meshguard's global rate-limit service: Envoy's Rate
// Limit Service v3 (envoy.service.ratelimit.v3.RateLimitService) backed by
// Redis, so that a limit holds across every sidecar and every replica.
//
// It reads envoyproxy/ratelimit's configuration format unchanged — a
// domain and nested descriptors with rate_limit {unit, requests_per_unit},
// unlimited, shadow_mode, name and replaces — so a deployment can switch
// without rewriting its limits. Counting is a fixed window per unit, as
// there, or a sliding window (the weighted previous window), exact across
// replicas because every increment is one atomic Redis operation.
//
// The pieces: config.go and match.go (the configuration and its lookup,
// pure), store.go (a directory of files, hot-reloaded), counter.go (Redis),
// service.go (the gRPC service).
package ratelimit

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"go.yaml.in/yaml/v3"

	"github.com/meshguard/meshguard/internal/yamlfile"
)

// fileDoc is one configuration file, in envoyproxy/ratelimit's format.
type fileDoc struct {
	Domain      string          `yaml:"domain"`
	Descriptors []descriptorDoc `yaml:"descriptors"`
}

type descriptorDoc struct {
	Key         string          `yaml:"key"`
	Value       string          `yaml:"value"`
	RateLimit   *rateLimitDoc   `yaml:"rate_limit"`
	Descriptors []descriptorDoc `yaml:"descriptors"`
	ShadowMode  bool            `yaml:"shadow_mode"`
	// QuotaMode, like shadow mode, answers OK over the limit (the status
	// still says OVER_LIMIT for the descriptor).
	QuotaMode bool `yaml:"quota_mode"`
	// ShareThreshold: every value matching a wildcard value shares one
	// counter instead of one per value.
	ShareThreshold bool `yaml:"share_threshold"`
	// DetailedMetric and ValueToMetric shape envoyproxy/ratelimit's statsd
	// names; accepted so files load unchanged, without effect here.
	DetailedMetric bool `yaml:"detailed_metric"`
	ValueToMetric  bool `yaml:"value_to_metric"`
}

type rateLimitDoc struct {
	Name            string        `yaml:"name"`
	Replaces        []replacesDoc `yaml:"replaces"`
	Unit            string        `yaml:"unit"`
	RequestsPerUnit uint32        `yaml:"requests_per_unit"`
	Unlimited       bool          `yaml:"unlimited"`
}

type replacesDoc struct {
	Name string `yaml:"name"`
}

// Limit is one configured limit.
type Limit struct {
	// Name is the limit's name, for replaces.
	Name            string
	Unit            rlsv3.RateLimitResponse_RateLimit_Unit
	RequestsPerUnit uint32
	Unlimited       bool
	ShadowMode      bool
	QuotaMode       bool
	// Replaces names the limits this one disables when both apply to a
	// request.
	Replaces []string
	// Path is where the limit sits in its file, for metrics and logs:
	// "domain.key_value.key".
	Path string
	// status is the CurrentLimit every response for this limit carries,
	// limitText its x-ratelimit-limit header.
	status    *rlsv3.RateLimitResponse_RateLimit
	limitText string
	// counters are this limit's decision counters, resolved on first use
	// (metric labels hashed once, not per request).
	counters atomic.Pointer[limitCounters]
}

// Seconds is the length of the limit's window.
func (l *Limit) Seconds() int64 { return unitSeconds(l.Unit) }

func unitSeconds(u rlsv3.RateLimitResponse_RateLimit_Unit) int64 {
	switch u {
	case rlsv3.RateLimitResponse_RateLimit_SECOND:
		return 1
	case rlsv3.RateLimitResponse_RateLimit_MINUTE:
		return 60
	case rlsv3.RateLimitResponse_RateLimit_HOUR:
		return 3600
	case rlsv3.RateLimitResponse_RateLimit_DAY:
		return 86400
	case rlsv3.RateLimitResponse_RateLimit_WEEK:
		return 7 * 86400
	case rlsv3.RateLimitResponse_RateLimit_MONTH:
		return 30 * 86400 // as envoyproxy/ratelimit counts a month
	case rlsv3.RateLimitResponse_RateLimit_YEAR:
		return 365 * 86400
	}
	return 0
}

// Domain is one domain's descriptor tree.
type Domain struct {
	Name string
	File string
	root node
}

// node is one level of a descriptor tree. Children are found by key, then
// value (no string is built per request); a key with no value entry is
// the default for every value.
type node struct {
	limit *Limit
	// sharePattern is a share_threshold wildcard value ("files*"): every
	// value it matches counts in one counter, keyed by the pattern.
	sharePattern string
	children     map[string]*keyNode
	wildcards    []wildcard // value prefixes ("files*"), in file order
}

type keyNode struct {
	byValue map[string]*node
	any     *node // the key without a value
}

type wildcard struct {
	key, prefix string
	node        *node
}

// ParseFile reads one configuration file. Unknown keys, an empty key, an
// invalid unit, a unit given with unlimited, duplicate descriptors and bad
// replaces are errors naming the file, the descriptor and the line.
func ParseFile(name string, data []byte) (*Domain, error) {
	var doc fileDoc
	if err := yamlfile.Decode(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var root yaml.Node
	_ = yaml.NewDecoder(bytes.NewReader(data)).Decode(&root)
	p := parser{file: name, root: &root}
	if doc.Domain == "" {
		return nil, fmt.Errorf("%s: domain is required", name)
	}
	d := &Domain{Name: doc.Domain, File: name}
	p.load(&d.root, doc.Descriptors, doc.Domain, []any{"descriptors"}, 0)
	if err := errors.Join(p.errs...); err != nil {
		return nil, err
	}
	return d, nil
}

type parser struct {
	file string
	root *yaml.Node
	errs []error
}

// fail records an error at path (field names and list indexes).
func (p *parser) fail(path []any, format string, args ...any) {
	var b strings.Builder
	for i, e := range path {
		switch e := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", e)
		case string:
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(e)
		}
	}
	loc := p.file
	if line := lineOf(p.root, path); line > 0 {
		loc += ":" + strconv.Itoa(line)
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %s: %s", loc, b.String(), fmt.Sprintf(format, args...)))
}

func (p *parser) load(n *node, docs []descriptorDoc, parentPath string, path []any, level int) {
	for i, dd := range docs {
		here := at(path, i)
		if dd.Key == "" {
			p.fail(here, "descriptor has an empty key")
			continue
		}
		if n.children == nil {
			n.children = map[string]*keyNode{}
		}
		kn := n.children[dd.Key]
		if kn == nil {
			kn = &keyNode{byValue: map[string]*node{}}
			n.children[dd.Key] = kn
		}
		child := &node{}
		full := dd.Key
		if dd.Value != "" {
			full += "_" + dd.Value
		}
		dup := false
		switch {
		case dd.Value == "":
			dup = kn.any != nil
			if !dup {
				kn.any = child
			}
		default:
			_, dup = kn.byValue[dd.Value]
			if !dup {
				kn.byValue[dd.Value] = child
			}
		}
		if dup {
			p.fail(here, "duplicate descriptor %q", parentPath+"."+full)
			continue
		}
		if strings.HasSuffix(dd.Value, "*") {
			n.wildcards = append(n.wildcards, wildcard{key: dd.Key, prefix: strings.TrimSuffix(dd.Value, "*"), node: child})
			if dd.ShareThreshold {
				child.sharePattern = dd.Value
			}
		} else if dd.ShareThreshold {
			p.fail(at(here, "share_threshold"), "only for a wildcard value (ending in '*')")
		}
		if rl := dd.RateLimit; rl != nil {
			child.limit = p.limit(rl, dd, parentPath+"."+full, at(here, "rate_limit"))
		}
		p.load(child, dd.Descriptors, parentPath+"."+full, at(here, "descriptors"), level+1)
	}
}

func (p *parser) limit(rl *rateLimitDoc, dd descriptorDoc, fullPath string, path []any) *Limit {
	u, known := rlsv3.RateLimitResponse_RateLimit_Unit_value[strings.ToUpper(rl.Unit)]
	valid := known && u != 0
	switch {
	case rl.Unlimited && valid:
		p.fail(at(path, "unit"), "an unlimited rate limit takes no unit")
	case !rl.Unlimited && !valid:
		p.fail(at(path, "unit"), "%q: want second, minute, hour, day, week, month or year", rl.Unit)
	}
	l := &Limit{Name: rl.Name, Unit: rlsv3.RateLimitResponse_RateLimit_Unit(u), RequestsPerUnit: rl.RequestsPerUnit,
		Unlimited: rl.Unlimited, ShadowMode: dd.ShadowMode, QuotaMode: dd.QuotaMode, Path: fullPath}
	for i, r := range rl.Replaces {
		switch {
		case r.Name == "":
			p.fail(at(path, "replaces", i), "an empty name")
		case r.Name == rl.Name:
			p.fail(at(path, "replaces", i), "a limit cannot replace itself")
		}
		l.Replaces = append(l.Replaces, r.Name)
	}
	l.status = &rlsv3.RateLimitResponse_RateLimit{Name: l.Name, RequestsPerUnit: l.RequestsPerUnit, Unit: l.Unit}
	l.limitText = strconv.FormatUint(uint64(l.RequestsPerUnit), 10)
	return l
}

// at is path with more elements, in a copy.
func at(path []any, more ...any) []any {
	return append(slices.Clone(path), more...)
}

// lineOf finds the line of path (mapping keys and sequence indexes) in a
// document, or 0.
func lineOf(doc *yaml.Node, path []any) int {
	n := doc
	if n == nil || len(n.Content) == 0 {
		return 0
	}
	n = n.Content[0]
	line := n.Line
	for _, e := range path {
		switch e := e.(type) {
		case string:
			if n.Kind != yaml.MappingNode {
				return line
			}
			found := false
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == e {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
			if !found {
				return line
			}
		case int:
			if n.Kind != yaml.SequenceNode || e >= len(n.Content) {
				return line
			}
			n = n.Content[e]
			line = n.Line
		}
	}
	return line
}
