package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/skolebuss/skolebuss/internal/auth"
	"github.com/skolebuss/skolebuss/internal/daemon"
	"github.com/skolebuss/skolebuss/internal/failure"
	"github.com/skolebuss/skolebuss/internal/flytapi"
	"github.com/skolebuss/skolebuss/internal/sandbox"
)

// envClientSecret names the environment variable with the client secret.
const envClientSecret = "SKOLEBUSS_CLIENT_SECRET"

func init() {
	register(command{
		name:    "pifu fetch",
		summary: "fetch one tenant's PIFU export from the upstream into a file",
		run: func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
			return pifuFetch(ctx, args, stdout, stderr, os.Getenv)
		},
	})
}

const pifuFetchHelp = `Usage: skolebuss pifu fetch --tenant ID -o FILE [flags]

Fetches one tenant's PIFU export: a client-credentials token for the tenant,
then GET /api/external/lms/pifu, streamed into FILE. By default it talks to
the demo sandbox (skolebuss demo, or cmd/sandbox) at http://127.0.0.1:8765
with the demo application's credentials.

The export is written to a temporary file beside FILE and renamed to FILE
only when the whole body has arrived, so FILE is never a partial document.
With -o - it is streamed to standard output instead. The file is created
with mode 0600: it holds personal data.

The client secret comes from --client-secret-file, else from the environment
variable SKOLEBUSS_CLIENT_SECRET, else (for the demo client id only) the
sandbox's public demo secret.

Exit status: 0 when the export was written, 1 when the upstream refused or
failed (the message says which and whether a retry can help), 2 for bad
flags.

Flags:
`

type fetchFlags struct {
	tenant, out, tokenURL, apiBase, clientID, secretFile, scope, tenantParam, authStyle string
}

func pifuFetch(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	base := "http://" + sandbox.DefaultAddr
	var f fetchFlags
	fs := flag.NewFlagSet("skolebuss pifu fetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.tenant, "tenant", "", "tenant id (the municipality's or school's tenant_ID) `ID`; required")
	fs.StringVar(&f.out, "o", "", "output `FILE`, or - for standard output; required")
	fs.StringVar(&f.tokenURL, "token-url", base+"/connect/token", "token endpoint `URL`")
	fs.StringVar(&f.apiBase, "api-base", base, "API base `URL` (scheme and host)")
	fs.StringVar(&f.clientID, "client-id", sandbox.DemoClientID, "OAuth client `ID` of the application")
	fs.StringVar(&f.secretFile, "client-secret-file", "", "`FILE` holding the client secret (else $"+envClientSecret+")")
	fs.StringVar(&f.scope, "scope", sandbox.ScopeLMSExport, "OAuth `scope`s to ask for, space-separated")
	fs.StringVar(&f.tenantParam, "tenant-param", auth.DefaultTenantParam, "`NAME` of the token request's tenant parameter")
	fs.StringVar(&f.authStyle, "auth-style", string(auth.AuthInParams), "how the client authenticates: params or header")
	fs.Usage = func() {
		fmt.Fprint(stderr, pifuFetchHelp)
		fs.PrintDefaults()
	}
	if err := daemon.ParseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case f.tenant == "":
		return fmt.Errorf("%w: --tenant is required", errUsage)
	case f.out == "":
		return fmt.Errorf("%w: -o FILE is required (- for standard output)", errUsage)
	}
	var err error
	if f.tenant, err = tenantFlag(f.tenant); err != nil {
		return err
	}
	secret, err := clientSecret(f, getenv)
	if err != nil {
		return err
	}

	// Quiet logger: the command reports errors and warnings itself.
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	src, err := auth.New(auth.Config{
		TokenURL:    f.tokenURL,
		TenantParam: f.tenantParam,
		AuthStyle:   auth.AuthStyle(f.authStyle),
		Applications: []auth.Application{{
			Name: f.clientID, ClientID: f.clientID, ClientSecret: secret, Scopes: strings.Fields(f.scope),
		}},
	}, logger, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	defer src.Close()
	apiCfg := flytapi.Config{APIBase: f.apiBase}
	if err := apiCfg.WithDefaults().Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	client := flytapi.New(apiCfg, src, logger, nil)

	start := time.Now()
	exp, err := client.FetchExport(ctx, f.clientID, f.tenant)
	if err != nil {
		return explain(err)
	}
	defer exp.Body.Close()
	if exp.Deprecation != "" || exp.Sunset != "" {
		fmt.Fprintf(stderr, "warning: the export API announces its deprecation (Deprecation: %q, Sunset: %q, version %s)\n",
			exp.Deprecation, exp.Sunset, exp.APIVersion)
	}
	var progress io.Writer = io.Discard
	var bar *progressbar.ProgressBar
	if isTerminal(stderr) {
		bar = progressbar.NewOptions64(exp.ContentLength,
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription("fetching "+f.tenant),
			progressbar.OptionShowBytes(true),
			progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionSpinnerType(14),
		)
		progress = bar
	}
	var n int64
	if f.out == "-" {
		n, err = io.Copy(io.MultiWriter(stdout, progress), exp.Body)
	} else {
		n, err = writeWhole(f.out, exp.Body, progress)
	}
	if bar != nil {
		_ = bar.Clear() // the summary line below (or the error) replaces it
	}
	if err != nil {
		return explain(err)
	}
	d := time.Since(start)
	dest := f.out
	if dest == "-" {
		dest = "standard output"
	}
	fmt.Fprintf(stderr, "fetched %d bytes for tenant %s into %s in %s (%.1f MB/s, API version %s)\n",
		n, f.tenant, dest, d.Round(time.Millisecond), float64(n)/1e6/max(d.Seconds(), 1e-9), orNone(exp.APIVersion))
	return nil
}

// clientSecret reads the secret from --client-secret-file, the environment,
// or, for the demo client only, the sandbox's public demo secret.
func clientSecret(f fetchFlags, getenv func(string) string) (auth.Secret, error) {
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return "", fmt.Errorf("%w: --client-secret-file: %v", errUsage, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%w: --client-secret-file %s is empty", errUsage, f.secretFile)
		}
		return auth.Secret(s), nil
	}
	if s := getenv(envClientSecret); s != "" {
		return auth.Secret(s), nil
	}
	if f.clientID == sandbox.DemoClientID {
		return auth.Secret(sandbox.DemoClientSecret), nil
	}
	return "", fmt.Errorf("%w: no client secret for %s: give --client-secret-file or set %s", errUsage, f.clientID, envClientSecret)
}

// writeWhole streams r into a temporary file beside path and renames it to
// path once r is read to its end; on any error the temporary file is
// removed and path is left as it was.
func writeWhole(path string, r io.Reader, progress io.Writer) (n int64, err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return 0, fmt.Errorf("create output: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if n, err = io.Copy(io.MultiWriter(tmp, progress), r); err != nil {
		return n, err
	}
	if err = tmp.Sync(); err != nil {
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return n, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}

// explain adds what the class of err means for the operator.
func explain(err error) error {
	switch failure.ClassOf(err) {
	case failure.Permanent:
		return fmt.Errorf("%w\n(a permanent refusal: check the credentials, scope, tenant and URLs; retrying will not help)", err)
	case failure.Throttled:
		return fmt.Errorf("%w\n(throttled: try again after the wait)", err)
	case failure.Canceled:
		return fmt.Errorf("interrupted (%w); no output file was written", context.Canceled)
	}
	return fmt.Errorf("%w\n(a transient failure: retrying may help)", err)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func orNone(s string) string {
	if s == "" {
		return "not given"
	}
	return s
}
