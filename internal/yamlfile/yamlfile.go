// Package yamlfile decodes configuration files strictly: an unknown key is an
// error that names the key and its line, so a typo never silently disables a
// security setting.
package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// MaxSize bounds a configuration file; anything larger is almost certainly a mistake.
const MaxSize = 16 << 20

// Load reads path and decodes it strictly into out.
func Load(path string, out any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := Decode(data, out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Decode decodes one YAML document strictly into out. Unknown keys, duplicate
// keys and trailing documents are errors.
func Decode(data []byte, out any) error {
	if len(data) > MaxSize {
		return fmt.Errorf("document is %d bytes, over the %d byte limit", len(data), MaxSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("document is empty")
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document; expected exactly one")
	}
	return nil
}
