package extauthz

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"
)

func TestCheckContinuesTheCallersTrace(t *testing.T) {
	h := newHarness(t, basePolicies, nil)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	svc := &checkService{a: h.srv.Authz, tr: &tracing{tracer: tp.Tracer("test"), enabled: true, prop: propagation.TraceContext{}}}

	const (
		fromHeader   = "4bf92f3577b34da6a3ce929d0e0e4736"
		fromMetadata = "0af7651916cd43dd8448eb211c80319c"
	)
	req := creq{method: "GET", path: "/catalog", ext: ordersExt,
		headers: map[string]string{"traceparent": "00-" + fromHeader + "-00f067aa0ba902b7-01"}}.proto()

	// No gRPC trace metadata: the CheckRequest's traceparent is the parent.
	if _, err := svc.Check(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// gRPC metadata wins over the header.
	md := metadata.Pairs("traceparent", "00-"+fromMetadata+"-b7ad6b7169203331-01")
	if _, err := svc.Check(metadata.NewIncomingContext(context.Background(), md), req); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	if got := spans[0].SpanContext().TraceID().String(); got != fromHeader {
		t.Errorf("span 1 trace = %s, want %s (from the CheckRequest header)", got, fromHeader)
	}
	if got := spans[1].SpanContext().TraceID().String(); got != fromMetadata {
		t.Errorf("span 2 trace = %s, want %s (from gRPC metadata)", got, fromMetadata)
	}
	for _, s := range spans {
		found := false
		for _, a := range s.Attributes() {
			if a.Key == "meshguard.decision_id" && a.Value.AsString() != "" {
				found = true
			}
		}
		if !found {
			t.Errorf("span %s lacks meshguard.decision_id", s.Name())
		}
	}
}
