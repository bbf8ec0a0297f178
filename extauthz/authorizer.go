package extauthz

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/extauthz/decisionlog"
	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/extauthz/revocation"
	"github.com/meshguard/meshguard/internal/contract"
)

// Reasons label every decision. Allowed: ReasonAllowed, ReasonShadowMode.
// Everything else denies.
const (
	ReasonAllowed         = "allowed"           // a permit matched and no forbid did
	ReasonShadowMode      = "shadow_mode"       // allowed because the route is in shadow mode
	ReasonPolicyDenied    = "policy_denied"     // a forbid matched, or no permit did
	ReasonNoToken         = "no_token"          // jwt.required and no bearer token
	ReasonInvalidToken    = "invalid_token"     // a bearer token was presented and refused
	ReasonInvalidSPIFFEID = "invalid_spiffe_id" // the peer certificate carries a malformed spiffe:// ID
	ReasonBadRequest      = "bad_request"       // the CheckRequest lacks what a decision needs
	ReasonBadRoute        = "bad_route"         // meshguard.* context extensions missing or invalid
	ReasonUnknownSet      = "unknown_policy_set"
	ReasonForbidError     = "forbid_error" // a forbid policy failed to evaluate
	ReasonTimeout         = "timeout"
	ReasonPanic           = "panic"
	ReasonInternal        = "internal"
	// ReasonRevocationUnavailable: the token's provider checks revocations,
	// the list cannot be trusted (Redis unreachable) and the provider
	// says deny.
	ReasonRevocationUnavailable = "revocation_unavailable"
)

// failClosedReasons are denials caused by the authorizer being unable to
// decide, rather than by a decision.
var failClosedReasons = map[string]bool{
	ReasonBadRequest: true, ReasonBadRoute: true, ReasonUnknownSet: true,
	ReasonForbidError: true, ReasonTimeout: true, ReasonPanic: true, ReasonInternal: true,
	ReasonRevocationUnavailable: true,
}

// Decision is the outcome for one request.
type Decision struct {
	ID     string
	Allow  bool   // the enforced outcome
	Status int    // 200 when allowed, else 401 or 403
	Reason string // one of the Reason* constants
	Mode   string
	Route  Route
	Caller Caller
	// Principal is the Cedar principal UID that was (or would have been) evaluated.
	Principal    cedar.EntityUID
	principalStr string
	Action       cedar.EntityUID
	// Policies are the determining policy IDs; Errors the policies that failed.
	Policies []string
	Errors   []policy.EvalError
	// Would is what enforcement would have done, in shadow mode.
	Would *Outcome
	// Shadow is the meshguard.shadow candidate set's outcome, when one is set.
	Shadow *ShadowOutcome
	// Rollout is what a rollout route's two sets decided.
	Rollout *RolloutOutcome
	// Request is the Cedar request evaluated, when the log records it.
	Request  *decisionlog.Request
	JWTError *jwt.Error
	// Detail explains a fail-closed denial, for logs only (never sent to clients).
	Detail string
	// setLoaded is whether Route.PolicySet was loaded when deciding: the
	// metrics label it by name only then, so label values stay bounded.
	setLoaded bool
}

// Outcome is an allow or deny with its status.
type Outcome struct {
	Allow  bool
	Status int
	Reason string
}

// ShadowOutcome is a candidate set's result.
type ShadowOutcome struct {
	PolicySet string
	Allow     bool
	Policies  []string
	Err       string
}

// Authorizer decides requests. It is safe for concurrent use.
type Authorizer struct {
	store    *policy.Store
	verifier *jwt.Verifier // nil without providers
	svids    *svidVerifier // nil unless jwt_svid is configured
	cfg      *Config
	metrics  *Metrics
	dlog     *decisionlog.Logger
	log      *slog.Logger
	rollouts *rolloutTable
	// destinations give route settings to requests without extensions.
	destinations destinationTable
	// revocations is the revocation list (nil without Redis); revocation
	// holds, for each provider that checks it, its fallback and counters.
	revocations *revocation.List
	revocation  map[string]*revocationCheck

	// Decision cache outcomes, resolved once (nil without metrics).
	cacheHit, cacheMiss, cacheBypass prometheus.Counter

	// denies are the latest denials, for status pages (GET /v1/denies).
	denies recentDenies

	// decide replaces Decide when set; tests use it to inject failures.
	decide func(context.Context, Attributes) Decision
}

// NewAuthorizer wires an authorizer. verifier and dlog may be nil.
func NewAuthorizer(cfg *Config, store *policy.Store, verifier *jwt.Verifier, m *Metrics, dlog *decisionlog.Logger, log *slog.Logger) *Authorizer {
	if log == nil {
		log = slog.Default()
	}
	a := &Authorizer{store: store, verifier: verifier, cfg: cfg, metrics: m, dlog: dlog, log: log}
	var rolloutMetric *prometheus.CounterVec
	if m != nil {
		rolloutMetric = m.Rollout
	}
	a.rollouts = newRolloutTable(rolloutMetric)
	a.destinations = newDestinationTable(cfg.Destinations)
	a.revocation = map[string]*revocationCheck{}
	for _, p := range cfg.JWT.Providers {
		if p.Revocation != nil {
			a.revocation[p.Name] = newRevocationCheck(p.Name, p.Revocation.OnUnavailable, m)
		}
	}
	if m != nil {
		a.cacheHit = m.DecisionCache.WithLabelValues("hit")
		a.cacheMiss = m.DecisionCache.WithLabelValues("miss")
		a.cacheBypass = m.DecisionCache.WithLabelValues("bypass")
	}
	return a
}

// Ready reports whether policies and keys have loaded.
func (a *Authorizer) Ready() bool {
	return a.store.Ready() && (a.verifier == nil || a.verifier.Ready())
}

// Decide runs the pipeline: route settings → caller identity → Cedar request
// → evaluation → outcome. Every error denies.
func (a *Authorizer) Decide(ctx context.Context, attrs Attributes) Decision {
	d := Decision{ID: newDecisionID(), Mode: ModeEnforce, Principal: AnonymousUID}
	route, err := RouteFromExtensions(a.destinations.routeExtensions(&attrs))
	if err != nil {
		return d.deny(403, ReasonBadRoute, err.Error())
	}
	d.Route, d.Mode = route, route.Mode
	d.Action = ActionUID(attrs, route)

	caller, authn := a.authenticate(ctx, attrs, &d)
	d.Caller, d.Principal = caller, caller.Principal()
	view, ok := a.store.Lookup(route.PolicySet)
	d.setLoaded = ok
	if authn != nil && authn.Reason == ReasonTimeout {
		return d.deny(403, ReasonTimeout, "decision deadline passed while fetching keys")
	}
	if !ok {
		return d.deny(403, ReasonUnknownSet, fmt.Sprintf("policy set %q is not loaded", route.PolicySet))
	}

	var enforced Outcome
	if authn != nil {
		enforced = *authn
	} else {
		// A second set evaluated for this request (a shadow or rollout
		// candidate, from the same load) shares its Cedar request.
		var other *policy.Set
		otherOK := false
		switch {
		case route.ShadowSet != "":
			other, otherOK = view.Other(route.ShadowSet)
		case route.Candidate != "":
			other, otherOK = view.Other(route.Candidate)
		}
		built := builtRequest{uses: view.Set.UsesWith(other)}
		defer built.release()
		in := request{attrs: &attrs, route: &route, caller: &caller, cedar: &built}
		res := a.evaluate(view, view.Set, in)
		switch {
		case route.ShadowSet != "":
			d.Shadow = a.evalShadow(view, route.ShadowSet, other, otherOK, in)
		case route.Candidate != "":
			res = a.evalRollout(view, res, other, otherOK, in, &d)
			if d.Rollout.CandidateEnforced && !otherOK {
				return d.deny(403, ReasonUnknownSet, fmt.Sprintf("candidate policy set %q is not loaded", route.Candidate))
			}
		}
		d.Policies, d.Errors = res.Determining, res.Errors
		if a.cfg.DecisionLog.RecordRequest {
			d.Request = recordRequest(&attrs, &route, &caller, a.cfg.RequestHeaders)
		}
		switch {
		case res.Allow:
			enforced = Outcome{Allow: true, Status: 200, Reason: ReasonAllowed}
		case res.ForbidErrored:
			enforced = Outcome{Status: 403, Reason: ReasonForbidError}
			d.Detail = "a forbid policy failed to evaluate"
		default:
			enforced = Outcome{Status: 403, Reason: ReasonPolicyDenied}
		}
	}
	if route.Mode == ModeShadow {
		d.Would = &enforced
		d.Allow, d.Status, d.Reason = true, 200, ReasonShadowMode
		return d
	}
	d.Allow, d.Status, d.Reason = enforced.Allow, enforced.Status, enforced.Reason
	return d
}

// authenticate establishes the caller. A non-nil Outcome is a denial
// (invalid token, missing required token, malformed SPIFFE ID).
func (a *Authorizer) authenticate(ctx context.Context, attrs Attributes, d *Decision) (Caller, *Outcome) {
	var c Caller
	if p := attrs.SourcePrincipal; p != "" && hasSPIFFEScheme(p) {
		id, err := spiffeid.FromString(p)
		if err != nil {
			d.Detail = "malformed SPIFFE ID: " + err.Error()
			return c, &Outcome{Status: 403, Reason: ReasonInvalidSPIFFEID}
		}
		c.Workload, c.Peer = id, id
	}
	if a.verifier == nil && a.svids == nil {
		return c, nil
	}
	tok, ok := BearerToken(attrs.Headers)
	if ok && a.svids != nil && looksLikeJWTSVID(tok) {
		id, err := a.svids.verify(tok)
		if err != nil {
			d.JWTError = &jwt.Error{Reason: jwt.ReasonBadSignature, Provider: "spiffe", Err: err}
			d.Detail = "JWT-SVID refused"
			return c, &Outcome{Status: 401, Reason: ReasonInvalidToken}
		}
		c.Workload = id
		return c, nil
	}
	if a.verifier == nil {
		// No end-user JWT providers: the mesh does not authenticate users;
		// the token is the application's business.
		return c, nil
	}
	if !ok {
		if a.cfg.JWT.Required {
			return c, &Outcome{Status: 401, Reason: ReasonNoToken}
		}
		return c, nil
	}
	id, err := a.verifier.Lookup(tok)
	if errors.Is(err, jwt.ErrNotCached) {
		// Only a token neither cache knows can wait (a JWKS refetch on an
		// unknown kid): bound it.
		if a.cfg.DecisionTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, a.cfg.DecisionTimeout)
			defer cancel()
		}
		id, err = a.verifier.Verify(ctx, tok)
		if r := jwt.ReasonOf(err); (r == jwt.ReasonUnknownKey || r == jwt.ReasonKeysUnavailable) && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The refusal may only mean the keys did not arrive in time.
			return c, &Outcome{Status: 403, Reason: ReasonTimeout}
		}
	}
	if err != nil {
		var je *jwt.Error
		if !errors.As(err, &je) {
			je = &jwt.Error{Reason: jwt.ReasonMalformed, Err: err}
		}
		d.JWTError = je
		return c, &Outcome{Status: 401, Reason: ReasonInvalidToken}
	}
	c.User = id
	if rc := a.revocation[id.Provider]; rc != nil {
		if out := a.checkRevoked(id, rc, d); out != nil {
			return c, out
		}
	}
	return c, nil
}

// revocationCheck is one provider's use of the revocation list: its
// fallback, and its counters resolved once.
type revocationCheck struct {
	allowUnavailable bool
	counts           map[string]prometheus.Counter // by result
}

func newRevocationCheck(provider, onUnavailable string, m *Metrics) *revocationCheck {
	rc := &revocationCheck{allowUnavailable: onUnavailable == jwt.OnUnavailableAllow, counts: map[string]prometheus.Counter{}}
	if m != nil {
		for _, r := range []string{"ok", "revoked", "unavailable_denied", "unavailable_allowed"} {
			rc.counts[r] = m.Revocation.WithLabelValues(provider, r)
		}
	}
	return rc
}

// checkRevoked looks a verified token up in the revocation list (in
// memory: no round trip). A revoked token is an invalid token; while the
// list cannot be trusted, the provider's fallback decides.
func (a *Authorizer) checkRevoked(id *jwt.Identity, rc *revocationCheck, d *Decision) *Outcome {
	revoked, ok := false, false
	if a.revocations != nil {
		revoked, ok = a.revocations.Check(revocation.Token{ID: id.TokenID, Session: id.SessionID, Subject: id.Subject, IssuedAt: id.IssuedAt})
	}
	result := "ok"
	var out *Outcome
	switch {
	case !ok && rc.allowUnavailable:
		result = "unavailable_allowed"
	case !ok:
		result = "unavailable_denied"
		d.Detail = "the revocation list is unavailable and provider " + id.Provider + " denies meanwhile"
		out = &Outcome{Status: 403, Reason: ReasonRevocationUnavailable}
	case revoked:
		result = "revoked"
		d.JWTError = &jwt.Error{Reason: jwt.ReasonRevoked, Provider: id.Provider, Err: errors.New("token revoked")}
		out = &Outcome{Status: 401, Reason: ReasonInvalidToken}
	}
	if c := rc.counts[result]; c != nil {
		c.Inc()
	}
	return out
}

func hasSPIFFEScheme(s string) bool {
	return len(s) >= 9 && strings.EqualFold(s[:9], "spiffe://")
}

// request is one request to decide. Its Cedar request and entities are
// built at most once, with the context that every set evaluated for it
// observes (uses), and shared by those sets.
//
// (The built parts are kept apart from the pointers to the request's
// parts: escape analysis does not tell a struct's fields apart, and the
// entities escape into Cedar's interface.)
type request struct {
	attrs  *Attributes
	route  *Route
	caller *Caller
	cedar  *builtRequest
}

type builtRequest struct {
	uses  *policy.Uses
	built bool
	req   cedar.Request
	ents  policy.Overlay

	// The cache key, computed once: the key of the first set evaluated,
	// whose set field (keyHead bytes) another set's key replaces.
	keyState int8 // 0 not computed, 1 cacheable, -1 not cacheable
	keyHead  int
	key      *[]byte // from keyBufs; release returns it
}

func (r request) build(a *Authorizer, static cedar.EntityMap) (cedar.Request, policy.Overlay) {
	b := r.cedar
	if !b.built {
		b.req = BuildRequest(*r.attrs, *r.route, *r.caller, a.cfg.RequestHeaders, b.uses)
		b.ents = a.entities(static, *r.caller)
		b.built = true
	}
	return b.req, b.ents
}

// cacheKey is the result cache key of set for the request, in scratch
// when set is not the first set keyed. The key holds the context every
// set evaluated for the request observes (uses): more than set alone may
// observe, which makes it more specific, never wrong.
func (r request) cacheKey(a *Authorizer, set string, scratch []byte) ([]byte, bool) {
	b := r.cedar
	if b.keyState == 0 {
		b.key = keyBufs.Get().(*[]byte)
		k, ok := appendEvalKey((*b.key)[:0], set, r.attrs, r.route, r.caller, a.cfg.RequestHeaders, b.uses)
		*b.key = k
		b.keyHead = len(appendKeyField(scratch[:0], keySet, set))
		b.keyState = 1
		if !ok {
			b.keyState = -1
		}
		return k, ok
	}
	if b.keyState < 0 {
		return nil, false
	}
	k := append(appendKeyField(scratch[:0], keySet, set), (*b.key)[b.keyHead:]...)
	return k, len(k) <= maxEvalKey
}

// release returns the key buffer.
func (b *builtRequest) release() {
	if b.key != nil {
		putKeyBuf(b.key)
		b.key = nil
	}
}

// evaluate evaluates set (the view's own, or another of its load) for a
// request, through the view's result cache when it has one (see
// appendEvalKey and cacheKey).
func (a *Authorizer) evaluate(v policy.View, set *policy.Set, in request) policy.Result {
	if v.Results == nil {
		return a.evalNow(v, set, in)
	}
	var scratch [maxEvalKey + 16]byte
	key, ok := in.cacheKey(a, set.Name, scratch[:])
	if !ok {
		a.count(a.cacheBypass)
		return a.evalNow(v, set, in)
	}
	if res, hit := v.Results.Get(key); hit {
		a.count(a.cacheHit)
		return res
	}
	a.count(a.cacheMiss)
	res := a.evalNow(v, set, in)
	v.Results.Put(key, res)
	return res
}

func (a *Authorizer) evalNow(v policy.View, set *policy.Set, in request) policy.Result {
	req, ents := in.build(a, v.Entities)
	return set.Evaluate(ents, req)
}

func (a *Authorizer) count(c prometheus.Counter) {
	if c != nil {
		c.Inc()
	}
}

func (a *Authorizer) entities(static cedar.EntityMap, c Caller) policy.Overlay {
	pe := c.principalEntity()
	if pe != nil && len(static) > 0 {
		merged := policy.Merge(*pe, static)
		pe = &merged
	}
	return policy.Overlay{Static: static, Extra: pe}
}

func (a *Authorizer) evalShadow(view policy.View, name string, set *policy.Set, ok bool, in request) *ShadowOutcome {
	so := &ShadowOutcome{PolicySet: name}
	if !ok {
		so.Err = "policy set not loaded"
		return so
	}
	res := a.evaluate(view, set, in)
	so.Allow = res.Allow
	so.Policies = res.Determining
	if len(res.Errors) > 0 && a.metrics != nil {
		a.metrics.EvalErrors.WithLabelValues(name).Add(float64(len(res.Errors)))
	}
	return so
}

// evalRollout evaluates a rollout route's candidate set (ok: it is loaded)
// beside the current set's result cur, counts how they compare, and
// returns the result to enforce: the candidate's for the callers in a
// canary's share, cur otherwise. When the candidate is not loaded, a
// request in the canary's share is denied by the caller (fail closed), and
// every request counts as an error, which a rollout gate sees.
func (a *Authorizer) evalRollout(view policy.View, cur policy.Result, set *policy.Set, ok bool, in request, d *Decision) policy.Result {
	route := in.route
	ro := &RolloutOutcome{Candidate: route.Candidate, Stage: route.Stage, Canary: route.Canary, Revision: route.Rollout, CurrentAllow: cur.Allow}
	d.Rollout = ro
	ro.CandidateEnforced = inCanary(route, d.PrincipalString())
	var res policy.Result
	if ok {
		res = a.evaluate(view, set, in)
		ro.CandidateAllow, ro.CandidatePolicies, ro.CandidateErrors = res.Allow, res.Determining, len(res.Errors)
		if len(res.Errors) > 0 && a.metrics != nil {
			a.metrics.EvalErrors.WithLabelValues(route.Candidate).Add(float64(len(res.Errors)))
		}
	} else {
		ro.CandidateErr = "policy set not loaded"
	}
	ro.outcome = compare(cur, res, ok)
	a.rollouts.count(route, ro)
	if ro.CandidateEnforced {
		return res
	}
	return cur
}

// PrincipalString is Principal in Cedar syntax, computed once.
func (d *Decision) PrincipalString() string {
	if d.principalStr == "" {
		d.principalStr = uidString(d.Principal)
	}
	return d.principalStr
}

func (d Decision) deny(status int, reason, detail string) Decision {
	d.Allow, d.Status, d.Reason, d.Detail = false, status, reason, detail
	return d
}

// PanicDecision is the denial returned when deciding panicked.
func PanicDecision(v any) Decision {
	d := Decision{ID: newDecisionID(), Mode: ModeEnforce, Principal: AnonymousUID}
	return d.deny(403, ReasonPanic, fmt.Sprint(v))
}

// record emits metrics and the decision log entry for a finished decision.
// start is when the request arrived; the clock is read once more here, for
// both the latency and the log entry's time.
func (a *Authorizer) record(d *Decision, attrs *Attributes, transport string, start time.Time) {
	end := time.Now()
	elapsed := end.Sub(start)
	setLabel := "_unknown"
	if d.setLoaded {
		setLabel = d.Route.PolicySet
	}
	if m := a.metrics; m != nil {
		result := "deny"
		if d.Allow {
			result = "allow"
		}
		m.Decisions.WithLabelValues(result, d.Mode, setLabel, m.routes.label(d.Route.ID), d.Reason).Inc()
		m.Latency.WithLabelValues(transport).Observe(elapsed.Seconds())
		if failClosedReasons[d.Reason] {
			m.FailClosed.WithLabelValues(d.Reason).Inc()
		}
		if d.JWTError != nil {
			m.JWTFailures.WithLabelValues(d.JWTError.Provider, string(d.JWTError.Reason)).Inc()
		}
		if len(d.Errors) > 0 {
			m.EvalErrors.WithLabelValues(setLabel).Add(float64(len(d.Errors)))
		}
		if d.Would != nil {
			m.Shadow.WithLabelValues(setLabel, "mode", allowWord(d.Would.Allow)).Inc()
		}
		if d.Shadow != nil {
			label := "_unknown"
			if d.Shadow.Err == "" { // evalShadow found the set loaded
				label = d.Shadow.PolicySet
			}
			m.Shadow.WithLabelValues(label, "candidate", allowWord(d.Shadow.Allow)).Inc()
		}
	}
	if failClosedReasons[d.Reason] {
		a.log.Warn("request denied: authorizer could not decide", "decision_id", d.ID, "reason", d.Reason,
			"route", d.Route.ID, "policy_set", d.Route.PolicySet, "detail", d.Detail)
	}
	if a.dlog == nil && d.Allow {
		return
	}
	// One entry for the decision log and the recent denials.
	e := logEntry(d, attrs, end, elapsed)
	if !d.Allow {
		a.denies.add(RecentDeny{Time: e.Time, DecisionID: e.DecisionID, Route: e.Route, PolicySet: e.PolicySet,
			Status: e.Status, Reason: e.Reason, Principal: e.Principal, Method: e.Method, Path: e.Path})
	}
	if a.dlog != nil {
		a.dlog.Log(&e)
	}
}

// RecentDenies returns the latest denials, newest first (at most 100).
func (a *Authorizer) RecentDenies() RecentDenies { return RecentDenies{Denies: a.denies.list()} }

func allowWord(b bool) string {
	if b {
		return "allow"
	}
	return "deny"
}

// maxLoggedPath bounds the path written to the decision log.
const maxLoggedPath = 512

func logEntry(d *Decision, attrs *Attributes, at time.Time, elapsed time.Duration) decisionlog.Entry {
	e := decisionlog.Entry{
		Time:       at.UTC(),
		DecisionID: d.ID,
		Route:      d.Route.ID,
		Service:    d.Route.Service,
		PolicySet:  d.Route.PolicySet,
		Mode:       d.Mode,
		Allowed:    d.Allow,
		Status:     d.Status,
		Reason:     d.Reason,
		Principal:  d.PrincipalString(),
		Detail:     d.Detail,
		Policies:   d.Policies,
		DurationUS: elapsed.Microseconds(),
	}
	if d.Action.Type != "" {
		e.Action = uidString(d.Action)
	}
	if attrs != nil {
		e.RequestID = truncateString(attrs.Headers["x-request-id"], 128)
		e.SourceAddress = attrs.SourceAddress
		e.Method = truncateString(attrs.Method, 32)
		e.Path = truncateString(attrs.Path, maxLoggedPath) // never the query: it may carry secrets
	}
	if !d.Caller.Workload.IsZero() {
		e.SourceSPIFFE = d.Caller.Workload.String()
	}
	if d.Caller.User != nil {
		e.JWTProvider = d.Caller.User.Provider
	}
	if d.JWTError != nil {
		e.JWTProvider = d.JWTError.Provider
		e.JWTError = string(d.JWTError.Reason)
	}
	for _, pe := range d.Errors {
		e.Errors = append(e.Errors, decisionlog.PolicyError{Policy: pe.PolicyID, Message: pe.Message})
	}
	if d.Would != nil {
		w := d.Would.Allow
		e.WouldAllow = &w
		e.WouldReason = d.Would.Reason
	}
	if d.Shadow != nil {
		e.Shadow = &decisionlog.Shadow{PolicySet: d.Shadow.PolicySet, Allowed: d.Shadow.Allow, Policies: d.Shadow.Policies, Error: d.Shadow.Err}
	}
	e.Request = d.Request
	if r := d.Rollout; r != nil {
		// Written into the outcome, which is on the heap already: a log
		// entry per rollout request without an allocation of its own.
		lr := &r.logged
		*lr = decisionlog.Rollout{Candidate: r.Candidate, Stage: r.Stage, Revision: r.Revision, Enforced: d.Route.PolicySet,
			Outcome: r.Outcome(), CurrentAllowed: r.CurrentAllow, CandidateAllowed: r.CandidateAllow,
			CandidatePolicies: r.CandidatePolicies, CandidateErrors: r.CandidateErrors, Error: r.CandidateErr}
		if r.Stage == contract.StageCanary {
			lr.Canary = contract.FormatPercent(r.Canary)
		}
		if r.CandidateEnforced {
			lr.Enforced = r.Candidate
		}
		e.Rollout = lr
	}
	return e
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// recordRequest is the Cedar request of a decision for the decision log:
// the whole context (the evaluation may have built less of it, which
// decides the same), and the principal entity as the request made it.
func recordRequest(attrs *Attributes, route *Route, caller *Caller, headers []string) *decisionlog.Request {
	req := BuildRequest(*attrs, *route, *caller, headers, policy.AllUses())
	p := cedar.Entity{UID: req.Principal}
	if pe := caller.principalEntity(); pe != nil {
		p = *pe
	}
	return &decisionlog.Request{Principal: p, Action: types.ImplicitlyMarshaledEntityUID(req.Action),
		Resource: types.ImplicitlyMarshaledEntityUID(req.Resource), Context: req.Context}
}
