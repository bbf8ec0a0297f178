package extauthz

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"
)

// decideSafely runs Decide and turns a panic into a denial: a bug in the
// authorizer must never allow a request or kill the server.
func (a *Authorizer) decideSafely(ctx context.Context, attrs *Attributes) (d Decision) {
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("panic while deciding; request denied", "panic", r, "stack", string(debug.Stack()))
			d = PanicDecision(r)
		}
	}()
	if a.decide != nil {
		return a.decide(ctx, *attrs)
	}
	return a.Decide(ctx, *attrs)
}

// tracing carries the tracer and whether trace context should be extracted.
type tracing struct {
	tracer  trace.Tracer
	enabled bool
	prop    propagation.TextMapPropagator
}

// start continues the caller's trace: from the gRPC metadata of the Check
// call when present, else from the traceparent the CheckRequest carries in
// its headers (which Envoy forwards only if allowed_headers lists it).
func (t *tracing) start(ctx context.Context, name string, headers map[string]string) (context.Context, trace.Span) {
	if !t.enabled {
		return ctx, trace.SpanFromContext(ctx)
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("traceparent")) > 0 {
		ctx = t.prop.Extract(ctx, mdCarrier(md))
	} else if headers != nil {
		ctx = t.prop.Extract(ctx, propagation.MapCarrier(headers))
	}
	return t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
}

func (t *tracing) end(span trace.Span, d *Decision) {
	if !t.enabled {
		return
	}
	span.SetAttributes(
		attribute.String("meshguard.decision_id", d.ID),
		attribute.Bool("meshguard.allowed", d.Allow),
		attribute.String("meshguard.reason", d.Reason),
		attribute.String("meshguard.policy_set", d.Route.PolicySet),
		attribute.String("meshguard.route", d.Route.ID),
		attribute.String("meshguard.mode", d.Mode),
	)
	if failClosedReasons[d.Reason] {
		span.SetStatus(codes.Error, d.Reason)
	}
	span.End()
}

type mdCarrier metadata.MD

func (c mdCarrier) Get(k string) string {
	if v := metadata.MD(c).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (c mdCarrier) Set(k, v string) { metadata.MD(c).Set(k, v) }
func (c mdCarrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// checkService is Envoy's ext_authz v3 gRPC service.
type checkService struct {
	authv3.UnimplementedAuthorizationServer
	a  *Authorizer
	tr *tracing
}

// Check never returns a gRPC error: every outcome, including internal
// failures, is an explicit CheckResponse, so the denial Envoy applies is ours.
func (s *checkService) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	start := time.Now()
	attrs, err := FromCheckRequest(req)
	ctx, span := s.tr.start(ctx, "meshguard.authz/Check", attrs.Headers)
	var d Decision
	if err != nil {
		d = Decision{ID: newDecisionID(), Mode: ModeEnforce, Principal: AnonymousUID}.deny(403, ReasonBadRequest, err.Error())
	} else {
		d = s.a.decideSafely(ctx, &attrs)
	}
	resp := CheckResponse(&d, &s.a.cfg.Response)
	s.a.record(&d, &attrs, "grpc", start)
	s.tr.end(span, &d)
	if d.Reason != ReasonAllowed && s.a.log.Enabled(ctx, slog.LevelDebug) {
		s.a.log.Debug("request denied or shadowed", "decision_id", d.ID, "reason", d.Reason, "route", d.Route.ID,
			"policy_set", d.Route.PolicySet, "principal", d.Principal.String())
	}
	return resp, nil
}
