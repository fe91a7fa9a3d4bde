/* tools/cli_http.c - the CLI's one HTTP client (libcurl) and how it reads
 * the server's answers.
 *
 * One easy handle per process, reset before every request
 * (curl_easy_reset keeps the connection cache, so a verb that makes
 * several calls reuses its connection) and set up again from the client's
 * settings, so no option of one request (a body, a method) leaks into the
 * next. Only http and https; redirects are not followed.
 *
 * TLS as wsk: the system's CA bundle, or --cacert FILE (CACERT in the
 * properties) as the only trusted roots; -i/--insecure skips verifying
 * the server's certificate and name; --cert/--key present a client
 * certificate. The key is sent as HTTP basic auth, never logged, and not
 * printed by --verbose.
 *
 * Answers are read into memory up to CLI_BODY_MAX (an action's code may
 * be 48 MB, in base64 a third more). */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "plat.h"
#include "wisp_config.h"

#define CLI_BODY_MAX (80u << 20)
#define CLI_URL_MAX 4096

struct cli_client {
    CURL *h;
    struct cli_conf conf;
    char base[1024];    /* scheme://host[:port]/api/VERSION/ */
    char noproxy[1024]; /* $no_proxy and the loopback names */
    char errbuf[CURL_ERROR_SIZE];
};

static int global_refs;

int cli_apihost_check(const char *h, struct cli_err *err)
{
    if (!*h)
        return cli_fail(err, CLI_EXIT_USAGE, "An API host must be provided.");
    if (strstr(h, "://") && strncasecmp(h, "http://", 7) != 0 && strncasecmp(h, "https://", 8) != 0)
        return cli_fail(err, CLI_EXIT_USAGE, "'%s' is neither http:// nor https://", h);
    if (strpbrk(h, " \t\r\n?#"))
        return cli_fail(err, CLI_EXIT_USAGE, "'%s' is not a URL", h);
    return 0;
}

/* wsk's GetURLBase: a host without a scheme is https. */
static int base_url(struct cli_client *cl, struct cli_err *err)
{
    const char *h = cl->conf.apihost;
    if (cli_apihost_check(h, err) < 0) {
        cli_err_prefix(err, "The API host is not valid: ");
        return -1;
    }
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == '/')
        n--;
    int w = snprintf(cl->base, sizeof cl->base, "%s%.*s/api/%s/",
                     strstr(h, "://") ? "" : "https://", (int)n, h, cl->conf.apiversion);
    if (w < 0 || (size_t)w >= sizeof cl->base)
        return cli_fail(err, CLI_EXIT_GENERAL, "The API host is not valid: too long");
    return 0;
}

int cli_client_open(const struct cli_conf *c, struct cli_client **out, struct cli_err *err)
{
    *out = NULL;
    if (!c->apihost[0])
        return cli_fail(err, CLI_EXIT_USAGE,
                        "The API host is not configured: set it with 'wisp property set "
                        "--apihost URL' or give --apihost URL");
    if (!c->auth[0])
        return cli_fail(err, CLI_EXIT_USAGE,
                        "Authorization key is not configured (--auth is required)");
    struct cli_client *cl = calloc(1, sizeof *cl);
    if (!cl)
        return cli_fail(err, CLI_EXIT_GENERAL, "out of memory");
    cl->conf = *c;
    /* As wsk (Go's ProxyFromEnvironment): http(s)_proxy is used, but never
     * for the loopback, which libcurl would otherwise send to it too. */
    const char *np = getenv("no_proxy") ? getenv("no_proxy") : getenv("NO_PROXY");
    snprintf(cl->noproxy, sizeof cl->noproxy, "%s%slocalhost,127.0.0.1,::1", np ? np : "",
             np && *np ? "," : "");
    if (base_url(cl, err) < 0) {
        free(cl);
        return -1;
    }
    if (global_refs++ == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        global_refs--;
        free(cl);
        return cli_fail(err, CLI_EXIT_GENERAL, "cannot initialise libcurl");
    }
    if (!(cl->h = curl_easy_init())) {
        cli_client_close(cl);
        return cli_fail(err, CLI_EXIT_GENERAL, "cannot initialise libcurl");
    }
    *out = cl;
    return 0;
}

void cli_client_close(struct cli_client *cl)
{
    if (!cl)
        return;
    if (cl->h)
        curl_easy_cleanup(cl->h);
    if (--global_refs == 0)
        curl_global_cleanup();
    explicit_bzero(cl->conf.auth, sizeof cl->conf.auth);
    free(cl);
}

void cli_resp_fini(struct cli_resp *r)
{
    json_decref(r->json);
    free(r->body);
    *r = (struct cli_resp){0};
}

/* ==== one request ======================================================= */

struct sink {
    struct plat_buf body;
    struct cli_resp *resp;
    bool too_big;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    if (s->body.len + len > CLI_BODY_MAX) {
        s->too_big = true;
        return 0;
    }
    return plat_buf_add(&s->body, p, len) == 0 ? len : 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sink *s = arg;
    size_t len = size * n;
    static const char name[] = "x-openwhisk-activation-id:";
    if (len > sizeof name && strncasecmp(p, name, sizeof name - 1) == 0) {
        const char *v = p + sizeof name - 1;
        size_t vl = len - (sizeof name - 1);
        while (vl && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        snprintf(s->resp->activation_id, sizeof s->resp->activation_id, "%.*s", (int)vl, v);
    }
    return len;
}

/* The options every request has, from the client's settings. */
static void setup(struct cli_client *cl, struct sink *s)
{
    CURL *h = cl->h;
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cl->errbuf);
    curl_easy_setopt(h, CURLOPT_NOPROXY, cl->noproxy);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "wisp-cli/" WISP_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERPWD, cl->conf.auth);
    /* A blocking invoke waits up to 60 s on the server, then answers 202. */
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
    if (cl->conf.cacert[0])
        curl_easy_setopt(h, CURLOPT_CAINFO, cl->conf.cacert);
    if (cl->conf.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (cl->conf.cert[0])
        curl_easy_setopt(h, CURLOPT_SSLCERT, cl->conf.cert);
    if (cl->conf.key[0])
        curl_easy_setopt(h, CURLOPT_SSLKEY, cl->conf.key);
}

static void trace(const char *what, const char *line, const char *body)
{
    fprintf(stderr, "%s:\n%s\n", what, line);
    if (body && *body)
        fprintf(stderr, "%s\n", body);
}

int cli_http(struct cli_client *cl, const char *method, const char *path, const json_t *body,
             struct cli_resp *out, struct cli_err *err)
{
    *out = (struct cli_resp){0};
    char url[CLI_URL_MAX];
    if (snprintf(url, sizeof url, "%s%s", cl->base, path) >= (int)sizeof url)
        return cli_fail(err, CLI_EXIT_USAGE, "the request URL is longer than %d bytes",
                        CLI_URL_MAX);
    char *payload = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (body && !payload)
        return cli_fail(err, CLI_EXIT_GENERAL, "cannot encode the request as JSON");
    struct sink s = {.resp = out};
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    if (payload)
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    setup(cl, &s);
    curl_easy_setopt(cl->h, CURLOPT_URL, url);
    curl_easy_setopt(cl->h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(cl->h, CURLOPT_HTTPHEADER, hdrs);
    if (payload) {
        curl_easy_setopt(cl->h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(cl->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(payload));
    }
    if (cl->conf.verbose) {
        char line[CLI_URL_MAX + 16];
        snprintf(line, sizeof line, "[%s]\t%s", method, url);
        trace("REQUEST", line, payload);
    }
    cl->errbuf[0] = '\0';
    CURLcode cc = curl_easy_perform(cl->h);
    curl_easy_getinfo(cl->h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(hdrs);
    free(payload);
    if (plat_buf_reserve(&s.body, 0) < 0) /* room for the NUL */
        cc = CURLE_OUT_OF_MEMORY;
    else
        s.body.data[s.body.len] = '\0';
    out->body = s.body.data;
    out->len = s.body.len;
    if (cc != CURLE_OK) {
        if (s.too_big)
            return cli_fail(err, CLI_EXIT_GENERAL, "the server's answer is larger than %u MB",
                            CLI_BODY_MAX >> 20);
        return cli_fail(err, CLI_EXIT_NETWORK, "cannot reach %s: %s", cl->conf.apihost,
                        cl->errbuf[0] ? cl->errbuf : curl_easy_strerror(cc));
    }
    if (out->len)
        out->json = json_loadb(out->body, out->len, JSON_DECODE_ANY, NULL);
    if (cl->conf.verbose) {
        char line[64];
        snprintf(line, sizeof line, "Got response with code %ld", out->status);
        trace("RESPONSE", line, out->body);
    }
    return 0;
}

/* ==== reading errors ===================================================== */

/* A JSON value as one line of text: strings as they are. */
static void as_text(const json_t *v, char *out, size_t cap)
{
    if (json_is_string(v)) {
        snprintf(out, cap, "%s", json_string_value(v));
        return;
    }
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out, cap, "%s", s ? s : "null");
    free(s);
}

int cli_resp_check(const struct cli_resp *r, struct cli_err *err)
{
    if (r->status >= 200 && r->status < 300)
        return 0;
    char text[900];
    const json_t *j = r->json, *e = json_object_get(j, "error"), *code;
    code = json_object_get(j, "code");
    const json_t *result = json_object_get(json_object_get(j, "response"), "result");
    if (e && code) { /* the API's own refusal: {"error", "code"} */
        as_text(e, text, sizeof text);
        char c[64];
        as_text(code, c, sizeof c);
        cli_fail(err, CLI_EXIT_GENERAL, "%s (code %s)", text, c);
        snprintf(err->code, sizeof err->code, "%s", c);
    } else if (r->status == 502 && result) { /* an action that failed: its record */
        as_text(result, text, sizeof text);
        cli_fail(err, CLI_EXIT_GENERAL, "The following application error was received: %s", text);
    } else if (r->status == 502 && e) { /* the same with result=true */
        as_text(e, text, sizeof text);
        cli_fail(err, CLI_EXIT_GENERAL, "%s", text);
    } else {
        cli_fail(err, CLI_EXIT_GENERAL,
                 "The connection failed, or timed out. (HTTP status code %ld)", r->status);
    }
    err->status = (int)r->status;
    int code256 = (int)((r->status - 256) % 256 + 256) % 256;
    err->exit_code = code256 ? code256 : CLI_EXIT_GENERAL;
    return -1;
}
