// Package telemetry sets up logging and OpenTelemetry tracing for meshguard's
// servers.
package telemetry

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/meshguard/meshguard/internal/version"
)

// TracingOptions selects a trace exporter.
type TracingOptions struct {
	Exporter    string // none | otlp | stdout
	Endpoint    string // host:port of an OTLP/gRPC collector
	Insecure    bool
	SampleRatio float64
	ServiceName string
}

// NewTracerProvider builds a tracer provider for opts. With exporter "none"
// it returns a no-op provider and enabled=false, so callers can skip trace
// context extraction entirely. shutdown flushes pending spans.
func NewTracerProvider(ctx context.Context, opts TracingOptions) (tp trace.TracerProvider, enabled bool, shutdown func(context.Context) error, err error) {
	var exp sdktrace.SpanExporter
	switch opts.Exporter {
	case "", "none":
		return noop.NewTracerProvider(), false, func(context.Context) error { return nil }, nil
	case "stdout":
		exp, err = stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	case "otlp":
		o := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(opts.Endpoint)}
		if opts.Insecure {
			o = append(o, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(ctx, o...)
	default:
		return nil, false, nil, fmt.Errorf("tracing exporter %q: want none, otlp or stdout", opts.Exporter)
	}
	if err != nil {
		return nil, false, nil, fmt.Errorf("tracing exporter %s: %w", opts.Exporter, err)
	}
	res := resource.NewSchemaless(
		semconv.ServiceName(opts.ServiceName),
		semconv.ServiceVersion(version.Version),
	)
	p := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(opts.SampleRatio))),
	)
	return p, true, p.Shutdown, nil
}
