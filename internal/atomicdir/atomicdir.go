// Package atomicdir replaces a directory's content at once, the way the
// kubelet updates a ConfigMap volume: the files live in a hidden version
// directory, "..data" is a symlink to the current one, and each top-level
// name is a symlink through "..data". Switching "..data" (a rename) swaps
// everything below the top level in one step, so a reader never sees half
// an update; readers skip names starting with "." (the policy store does).
package atomicdir

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

const dataLink = "..data"

// Write makes dir hold exactly files (relative slash-separated path →
// content). Paths must be relative, clean and not start with ".".
func Write(dir string, files map[string][]byte) error {
	for p := range files {
		if !validPath(p) {
			return fmt.Errorf("atomicdir: %q is not a clean relative path", p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	version := "..v-" + randomSuffix()
	vdir := filepath.Join(dir, version)
	if err := os.Mkdir(vdir, 0o755); err != nil {
		return err
	}
	for p, data := range files {
		full := filepath.Join(vdir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return cleanup(vdir, err)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			return cleanup(vdir, err)
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, dataLink))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(version, tmp); err != nil {
		return cleanup(vdir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataLink)); err != nil {
		return cleanup(vdir, err)
	}
	// Top-level names: link the new ones, unlink the gone ones.
	want := map[string]bool{}
	for p := range files {
		want[strings.SplitN(p, "/", 2)[0]] = true
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || want[name] {
			continue
		}
		if e.Type()&os.ModeSymlink != 0 {
			errs = append(errs, os.Remove(filepath.Join(dir, name)))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		link := filepath.Join(dir, name)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataLink, name) {
			continue
		}
		_ = os.Remove(link)
		errs = append(errs, os.Symlink(filepath.Join(dataLink, name), link))
	}
	if old != "" && old != version && strings.HasPrefix(old, "..v-") {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, old)))
	}
	return errors.Join(errs...)
}

func validPath(p string) bool {
	if p == "" || strings.HasPrefix(p, "/") || filepath.ToSlash(filepath.Clean(p)) != p {
		return false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." || strings.HasPrefix(part, ".") {
			return false
		}
	}
	return true
}

func cleanup(vdir string, err error) error {
	_ = os.RemoveAll(vdir)
	return err
}

func randomSuffix() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
