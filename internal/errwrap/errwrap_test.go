package errwrap

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMulti(t *testing.T) {
	for _, tc := range []struct {
		name    string
		errs    []error
		timeout bool
	}{
		{"none", nil, false},
		{"plain", []error{io.EOF}, false},
		{"deadline", []error{io.EOF, os.ErrDeadlineExceeded}, true},
		{"wrapped deadline", []error{fmt.Errorf("read: %w", os.ErrDeadlineExceeded)}, true},
		{"context deadline", []error{context.DeadlineExceeded}, true},
		{"context canceled", []error{context.Canceled}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Multi{Msg: "x: " + tc.name, Errs: tc.errs}
			assert.Equal(t, "x: "+tc.name, e.Error())
			assert.Equal(t, tc.timeout, e.Timeout())
			for _, w := range tc.errs {
				assert.ErrorIs(t, e, w)
			}
			assert.NotErrorIs(t, e, io.ErrUnexpectedEOF)
		})
	}
}
