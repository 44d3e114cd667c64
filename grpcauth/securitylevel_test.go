package grpcauth

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/credentials"

	"github.com/hmacauth/auth"
)

// TestSecurityLevel pins the honest mapping: auth-only authenticates but
// protects nothing, and a mode the table does not know claims nothing.
func TestSecurityLevel(t *testing.T) {
	for _, tt := range []struct {
		mode auth.Mode
		want credentials.SecurityLevel
	}{
		{auth.ModeAuthOnly, credentials.NoSecurity},
		{auth.ModeSealedAES256GCM, credentials.PrivacyAndIntegrity},
		{auth.ModeSealedChaCha20Poly1305, credentials.PrivacyAndIntegrity},
		{auth.ModeRecipe, credentials.NoSecurity},
		{0, credentials.NoSecurity},
		{auth.Mode(0x80), credentials.NoSecurity},
	} {
		assert.Equal(t, tt.want, securityLevel(tt.mode), "mode %v", tt.mode)
	}
}
