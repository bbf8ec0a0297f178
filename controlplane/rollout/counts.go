package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/meshguard/meshguard/internal/httpjson"
)

// authzStatus is the part of an authorizer's /v1/rollouts the controller
// reads (extauthz.RolloutStatus; decoded here so the control plane does
// not link the authorizer).
type authzStatus struct {
	Instance string `json:"instance"`
	Steps    []struct {
		Route     string `json:"route"`
		Revision  string `json:"revision"`
		PolicySet string `json:"policy_set"`
		Candidate string `json:"candidate"`
		Counts
	} `json:"steps"`
}

// read is one authorizer's answer.
type read struct {
	source string
	status authzStatus
}

// maxStatusBytes bounds an authorizer's answer (1,024 steps of counts
// fit in well under 1 MiB).
const maxStatusBytes = 4 << 20

// Authorizers are the admin addresses of the authorizer replicas the gates
// read: found now (Config.Discover) or configured (Config.Authorizers).
func (c *Controller) Authorizers(ctx context.Context) []string {
	if c.cfg.Discover != nil {
		return c.cfg.Discover(ctx)
	}
	return c.cfg.Authorizers
}

// fetch reads every authorizer's counts in parallel. The error names each
// authorizer that did not answer; the reads of the others are returned.
func (c *Controller) fetch(ctx context.Context) ([]read, error) {
	sources := c.Authorizers(ctx)
	if len(sources) == 0 && c.cfg.Discover != nil {
		return nil, errors.New("no authorizer replica is ready (none found behind its Service)")
	}
	if len(sources) == 0 {
		return nil, errors.New("no authorizer admin address is configured (controlplane --authz-admin)")
	}
	var (
		reads []read
		errs  []error
	)
	for _, r := range httpjson.FromEach(ctx, sources, c.fetchOne) {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("authorizer %s: %w", r.Source, r.Err))
			continue
		}
		reads = append(reads, read{source: r.Source, status: r.Value})
	}
	return reads, errors.Join(errs...)
}

func (c *Controller) fetchOne(ctx context.Context, src string) (authzStatus, error) {
	var st authzStatus
	if err := httpjson.Get(ctx, c.cfg.Client, strings.TrimSuffix(src, "/")+"/v1/rollouts", maxStatusBytes, &st); err != nil {
		return authzStatus{}, err
	}
	if st.Instance == "" {
		return authzStatus{}, errors.New("/v1/rollouts: no instance id")
	}
	return st, nil
}

// seenKey is one authorizer process's counts of one step. An authorizer's
// counts are cumulative while it runs; a restart is a new instance, so
// its counts add to what the old one had counted instead of replacing it.
type seenKey struct {
	Source   string `json:"source"`
	Instance string `json:"instance"`
	Route    string `json:"route"`
	Revision string `json:"revision"`
}

func (k seenKey) String() string {
	return k.Source + "|" + k.Instance + "|" + k.Route + "|" + k.Revision
}

// seenCounts are an instance's latest counts of a step, over Base: the
// counts it had before it forgot the step (an authorizer keeps a bounded
// number of steps) and started it again from zero.
type seenCounts struct {
	Base Counts `json:"base"`
	Last Counts `json:"last"`
}

// record takes the reads of the steps in want (route → revision), for the
// route's sets. Called with c.mu held.
func (c *Controller) record(reads []read, want map[string]string) {
	for _, rd := range reads {
		for _, s := range rd.status.Steps {
			r := c.rollouts[s.Route]
			if r == nil || want[s.Route] != s.Revision || s.PolicySet != r.Current || s.Candidate != r.Candidate {
				continue
			}
			k := seenKey{Source: rd.source, Instance: rd.status.Instance, Route: s.Route, Revision: s.Revision}
			prev := c.seen[k]
			if s.Requests < prev.Last.Requests {
				prev.Base.add(prev.Last)
			}
			prev.Last = s.Counts
			c.seen[k] = prev
		}
	}
}

// total sums the counts of r's current revision over every instance.
// Called with c.mu held.
func (c *Controller) total(r *Rollout) Counts {
	var t Counts
	for k, v := range c.seen {
		if k.Route == r.Route && k.Revision == r.Revision {
			t.add(v.Base)
			t.add(v.Last)
		}
	}
	return t
}

// prune forgets the counts of revisions no longer in force. Called with
// c.mu held.
func (c *Controller) prune() {
	for k := range c.seen {
		if r := c.rollouts[k.Route]; r == nil || r.Revision != k.Revision {
			delete(c.seen, k)
		}
	}
}
