// Package hashchain makes a JSON-lines log tamper-evident: every line
// carries "prev", the SHA-256 of the line before it, so changing, removing,
// inserting or reordering a line breaks the chain at that line, and Verify
// says where. The first line of a log links to the last line of the log it
// continues (a restart appends to the same chain; after a rotation the new
// file's first line links to the old file's last), or to 64 zeros.
//
// It proves integrity against edits of the file, not against whoever
// writes it: an attacker with the writer's key material — here, none; the
// hash is not keyed — can rebuild a whole chain. Ship the logs elsewhere
// (or keep the last hash out of reach) to detect that.
package hashchain

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Genesis is the prev of the first line of a new chain.
var Genesis = [sha256.Size]byte{}

// Chain links lines; the zero value starts a new chain.
type Chain struct {
	prev [sha256.Size]byte
}

// Last is the hash of the last line sealed (Genesis before any).
func (c *Chain) Last() [sha256.Size]byte { return c.prev }

// Seal appends ,"prev":"<hex>" before the closing brace of line (one JSON
// object, no newline) and a newline, and makes the result the chain's last
// line. It reports false, changing nothing, for a line that is not an
// object.
func (c *Chain) Seal(line []byte) ([]byte, bool) {
	n := len(line)
	if n < 2 || line[0] != '{' || line[n-1] != '}' {
		return line, false
	}
	line = line[:n-1]
	if n > 2 {
		line = append(line, ',')
	}
	line = append(line, `"prev":"`...)
	line = hex.AppendEncode(line, c.prev[:])
	line = append(line, `"}`...)
	c.prev = sha256.Sum256(line)
	return append(line, '\n'), true
}

// MaxLine bounds a line Resume and Verify read.
const MaxLine = 16 << 20

// Resume continues the chain of the log at path: its last line's hash.
// When path is missing or empty — a new log, or one just rotated — it
// continues path.1, the file rotated last; with neither, Genesis.
func Resume(path string) (Chain, error) {
	c, ok, err := lastLine(path)
	if err != nil || ok {
		return c, err
	}
	c, _, err = lastLine(path + ".1")
	return c, err
}

// lastLine reports the hash of the last line of the file at path and
// whether it has one.
func lastLine(path string) (Chain, bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return Chain{}, false, nil
	}
	if err != nil {
		return Chain{}, false, err
	}
	defer f.Close()
	var c Chain
	found := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), MaxLine)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			c.prev, found = sha256.Sum256(sc.Bytes()), true
		}
	}
	if err := sc.Err(); err != nil {
		return Chain{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return c, found, nil
}

// Break is where a chain is broken.
type Break struct {
	Line   int    // 1-based
	Reason string // what is wrong
}

func (b *Break) Error() string { return fmt.Sprintf("line %d: %s", b.Line, b.Reason) }

// Verify reads a log and checks every line's prev against the line before
// (the first against start, when not nil). It returns the number of lines,
// the last line's hash (to verify the next file of a rotation with), and
// the first break, or nil. A read error is returned as err.
func Verify(r io.Reader, start *[sha256.Size]byte) (lines int, last [sha256.Size]byte, brk *Break, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	prev, checkFirst := Genesis, start != nil
	if start != nil {
		prev = *start
	}
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it whole, bounded.
			buf := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) && len(buf) <= MaxLine {
				line, err = br.ReadSlice('\n')
				buf = append(buf, line...)
			}
			if len(buf) > MaxLine {
				return lines, prev, &Break{lines + 1, "a line longer than 16 MiB"}, nil
			}
			line = buf
		}
		if len(line) == 0 && errors.Is(err, io.EOF) {
			return lines, prev, nil, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return lines, prev, nil, err
		}
		lines++
		if !bytes.HasSuffix(line, []byte("\n")) {
			return lines, prev, &Break{lines, "the last line is cut short (no newline): the log was truncated or is being written"}, nil
		}
		body := line[:len(line)-1]
		var rec struct {
			Prev *string `json:"prev"`
		}
		if json.Unmarshal(body, &rec) != nil {
			return lines, prev, &Break{lines, "not a JSON object"}, nil
		}
		if rec.Prev == nil {
			return lines, prev, &Break{lines, `no "prev": the line is not part of a chain`}, nil
		}
		got, derr := hex.DecodeString(*rec.Prev)
		if derr != nil || len(got) != sha256.Size {
			return lines, prev, &Break{lines, `"prev" is not a SHA-256`}, nil
		}
		if !bytes.Equal(got, prev[:]) && (lines > 1 || checkFirst) {
			reason := "its prev does not match the line before: a line was changed, removed or inserted here"
			if lines == 1 {
				reason = "its prev does not match the last line of the previous file"
			}
			return lines, prev, &Break{lines, reason}, nil
		}
		prev = sha256.Sum256(body)
		if errors.Is(err, io.EOF) {
			return lines, prev, nil, nil
		}
	}
}
