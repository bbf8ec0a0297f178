package examples

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/meshguard/meshguard/wasm/filters/headers"
	"github.com/meshguard/meshguard/wasm/filters/ratelimit"
	"github.com/meshguard/meshguard/wasm/filters/validate"
)

func TestIstioWasmPluginConfigsAreValid(t *testing.T) {
	data, err := os.ReadFile("istio/wasmplugins.yaml")
	if err != nil {
		t.Fatal(err)
	}
	parsers := map[string]func([]byte) error{
		"meshguard-headers":   func(b []byte) error { _, err := headers.Parse(b); return err },
		"meshguard-ratelimit": func(b []byte) error { _, err := ratelimit.Parse(b); return err },
		"meshguard-validate":  func(b []byte) error { _, err := validate.Parse(b); return err },
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	seen := 0
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				PluginConfig map[string]any `yaml:"pluginConfig"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind != "WasmPlugin" {
			t.Fatalf("unexpected kind %q", doc.Kind)
		}
		parse, ok := parsers[doc.Metadata.Name]
		if !ok {
			t.Fatalf("unknown plugin %q", doc.Metadata.Name)
		}
		js, err := json.Marshal(doc.Spec.PluginConfig)
		if err != nil {
			t.Fatal(err)
		}
		if err := parse(js); err != nil {
			t.Errorf("%s: %v", doc.Metadata.Name, err)
		}
		seen++
	}
	if seen != 3 {
		t.Fatalf("%d WasmPlugins, want 3", seen)
	}
}
