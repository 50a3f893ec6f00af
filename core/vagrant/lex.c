/* The tokenizer for the Ruby Vagrantfiles are written in: identifiers,
 * constants, $globals and @ivars, numbers, strings with #{} (kept as source
 * and parsed later), escapes, %w() %i() %q() %Q(), symbols, labels
 * (`key:`), heredocs (<<EOS, <<-EOS, <<~EOS, quoted ids), regexes and
 * backticks (kept, never evaluated), comments and =begin/=end, line
 * continuations (a trailing `\`, a next line starting with `.`). Only
 * input that no Ruby could read is an error: an unterminated string or
 * heredoc, a stray byte. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/vagrant/vf_priv.h"

struct heredoc {
	size_t tok;   /* index of its string token */
	char *id;
	bool squiggly, dash, raw;
};

struct lexer {
	struct arena *a;
	const char *s, *end, *p;
	int line;
	const char *line_start;
	int col0; /* added to columns on the first line */
	struct tok *v;
	size_t n, cap;
	struct heredoc pend[8];
	size_t npend;
	bool sp;
	struct diag *d;
};

static int col_of(const struct lexer *L, const char *p)
{
	int c = (int)(p - L->line_start) + 1;
	return L->line_start == L->s ? c + L->col0 : c;
}

static int lex_err(struct lexer *L, const char *at, const char *msg)
{
	diag_fail(L->d, "%s", msg);
	L->d->line = L->line;
	L->d->col = col_of(L, at);
	return -1;
}

static struct tok *push(struct lexer *L, enum tk k, const char *at)
{
	if (L->n == L->cap) {
		L->cap = L->cap ? L->cap * 2 : 256;
		struct tok *nv = ar_alloc(L->a, L->cap * sizeof(*nv));
		if (L->n)
			memcpy(nv, L->v, L->n * sizeof(*nv));
		L->v = nv;
	}
	struct tok *t = &L->v[L->n++];
	*t = (struct tok){.k = k, .line = L->line, .col = col_of(L, at), .sp = L->sp};
	L->sp = false;
	return t;
}

static struct tok *last(struct lexer *L) { return L->n ? &L->v[L->n - 1] : NULL; }

/* After a value a `/`, `%`, `<<`, `?` or `[` is an operator; elsewhere it
 * starts a literal. */
static bool after_value(struct lexer *L)
{
	const struct tok *t = last(L);
	if (!t)
		return false;
	switch (t->k) {
	case TK_NL: case TK_LABEL: return false;
	case TK_OP: return strchr(")]}", t->s[0]) && t->s[1] == '\0';
	case TK_IDENT: {
		static const char *const kw[] = {"if", "unless", "while", "until", "and", "or",
						 "not", "return", "then", "else", "elsif", "when",
						 "do", "case", "in", NULL};
		for (const char *const *k = kw; *k; k++)
			if (strcmp(t->s, *k) == 0)
				return false;
		/* `foo /x/`: a method call with a regex; `a / b`: division */
		return !(L->sp && L->p + 1 < L->end && L->p[1] != ' ');
	}
	default: return true;
	}
}

static bool ident_start(char c) { return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80; }
static bool ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80; }

/* ---- string bodies ---- */

struct sbuf {
	struct buf b;
	struct strpart *parts;
	size_t n, cap;
	struct arena *a;
};

static void part_add(struct sbuf *sb, const char *text, bool code, int line, int col)
{
	if (sb->n == sb->cap) {
		sb->cap = sb->cap ? sb->cap * 2 : 4;
		struct strpart *nv = ar_alloc(sb->a, sb->cap * sizeof(*nv));
		if (sb->n)
			memcpy(nv, sb->parts, sb->n * sizeof(*nv));
		sb->parts = nv;
	}
	sb->parts[sb->n++] = (struct strpart){ar_strdup(sb->a, text), code, line, col};
}

static void flush_text(struct sbuf *sb, int line, int col)
{
	if (sb->b.len)
		part_add(sb, sb->b.s, false, line, col);
	if (sb->b.s)
		sb->b.s[0] = '\0';
	sb->b.len = 0;
}

static void put_utf8(struct buf *b, unsigned long c)
{
	char o[4];
	size_t n;
	if (c >= 0xd800 && c < 0xe000)
		return; /* a surrogate is no character */
	if (c < 0x80) {
		o[0] = (char)c, n = 1;
	} else if (c < 0x800) {
		o[0] = (char)(0xc0 | (c >> 6)), o[1] = (char)(0x80 | (c & 0x3f)), n = 2;
	} else if (c < 0x10000) {
		o[0] = (char)(0xe0 | (c >> 12)), o[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		o[2] = (char)(0x80 | (c & 0x3f)), n = 3;
	} else {
		o[0] = (char)(0xf0 | ((c >> 18) & 7)), o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
		o[2] = (char)(0x80 | ((c >> 6) & 0x3f)), o[3] = (char)(0x80 | (c & 0x3f)), n = 4;
	}
	buf_add(b, o, n);
}

static const struct {
	char c, v;
} simple_escapes[] = {{'n', '\n'}, {'t', '\t'}, {'r', '\r'}, {'0', '\0'}, {'s', ' '},
		      {'e', 27},   {'a', 7},    {'b', 8},    {'f', 12},   {'v', 11}};

/* One escape after a backslash at p in a double-quoted string; returns the
 * position after it. A NUL byte is dropped: corral's strings are C strings. */
static const char *escape(struct buf *b, const char *p, const char *end)
{
	char c = *p;
	for (size_t i = 0; i < sizeof(simple_escapes) / sizeof(simple_escapes[0]); i++)
		if (c == simple_escapes[i].c) {
			if (simple_escapes[i].v)
				buf_add(b, &simple_escapes[i].v, 1);
			return p + 1;
		}
	if (c == 'x' && p + 1 < end && isxdigit((unsigned char)p[1])) {
		char *e;
		char hex[3] = {p[1], p + 2 < end && isxdigit((unsigned char)p[2]) ? p[2] : 0, 0};
		unsigned long v = strtoul(hex, &e, 16);
		if (v)
			put_utf8(b, v);
		return p + 1 + (e - hex);
	}
	if (c == 'u' && p + 1 < end) {
		bool brace = p[1] == '{';
		const char *q = p + 1 + brace;
		char *e;
		unsigned long v = strtoul(q, &e, 16);
		if (e > q && v && v < 0x110000)
			put_utf8(b, v);
		return e + (brace && *e == '}');
	}
	if (c == '\n')
		return p + 1;
	buf_add(b, p, 1);
	return p + 1;
}

/* The end of the code in a #{...} starting at p (after the brace): the
 * matching }, skipping nested braces and quoted strings. */
static const char *interp_end(const char *p, const char *end)
{
	int depth = 0;
	for (; p < end; p++) {
		if (*p == '"' || *p == '\'') {
			char q = *p;
			for (p++; p < end && *p != q; p++)
				if (*p == '\\')
					p++;
			if (p >= end)
				return NULL;
		} else if (*p == '{') {
			depth++;
		} else if (*p == '}') {
			if (!depth--)
				return p;
		}
	}
	return NULL;
}

struct strspec {
	char open, close; /* close == open for quotes */
	bool interp;      /* double-quoted rules */
	bool raw;         /* <<~'EOS': no escapes at all */
};

/* A backslash escape at L->p by the string's rules. */
static void backslash(struct lexer *L, const struct strspec *sp, struct sbuf *sb, bool words)
{
	if (sp->interp) {
		if (L->p[1] == '\n') {
			L->line++;
			L->line_start = L->p + 2;
		}
		L->p = escape(&sb->b, L->p + 1, L->end);
		return;
	}
	char n = L->p[1];
	bool esc = n == '\\' || n == sp->close || n == sp->open || (words && isspace((unsigned char)n));
	if (!esc)
		buf_add(&sb->b, L->p, 1);
	buf_add(&sb->b, L->p + 1, 1);
	L->p += 2;
}

/* #{code}, #@ivar or #$global at L->p: the code as a part of its own.
 * 1: it was one, 0: it was not, -1: it never ends. */
static int interpolation(struct lexer *L, struct sbuf *sb, int *line, int *col)
{
	const char *p = L->p, *e;
	if (p[1] == '{') {
		if (!(e = interp_end(p + 2, L->end)))
			return lex_err(L, p, "unterminated #{ in a string");
		flush_text(sb, *line, *col);
		_cleanup_free_ char *code = xstrndup(p + 2, (size_t)(e - p - 2));
		part_add(sb, code, true, L->line, col_of(L, p + 2));
		for (const char *q = p; q < e; q++)
			if (*q == '\n') {
				L->line++;
				L->line_start = q + 1;
			}
		L->p = e + 1;
	} else if ((p[1] == '@' || p[1] == '$') && ident_start(p[2])) {
		for (e = p + 2; e < L->end && ident_char(*e);)
			e++;
		flush_text(sb, *line, *col);
		_cleanup_free_ char *code = xstrndup(p + 1, (size_t)(e - p - 1));
		part_add(sb, code, true, L->line, col_of(L, p + 1));
		L->p = e;
	} else {
		return 0;
	}
	*line = L->line, *col = col_of(L, L->p);
	return 1;
}

/* Ends the current word of a %w() list. */
static void word_end(struct lexer *L, struct sbuf *sb, struct vec *words, int line, int col)
{
	flush_text(sb, line, col);
	if (sb->n)
		vec_push(L->a, words, (void *)sb->parts[--sb->n].text);
}

/* Reads a string body from L->p up to its closing delimiter into parts
 * (words: split at white space into it instead). Tracks lines; returns 0,
 * or -1 when it never ends. */
static int read_body(struct lexer *L, const struct strspec *sp, struct sbuf *sb,
		     struct vec *words)
{
	const char *start = L->p, *start_line = L->line_start;
	int start_lineno = L->line, depth = 0, line = L->line, col = col_of(L, L->p);
	while (L->p < L->end) {
		char c = *L->p;
		if (c == sp->close && !depth) {
			L->p++;
			if (words)
				word_end(L, sb, words, line, col);
			else
				flush_text(sb, line, col);
			return 0;
		}
		if (sp->open != sp->close && (c == sp->open || c == sp->close))
			depth += c == sp->open ? 1 : -1;
		if (c == '\n') {
			L->line++;
			L->line_start = L->p + 1;
		}
		int r = sp->interp && c == '#' ? interpolation(L, sb, &line, &col) : 0;
		if (r < 0)
			return -1;
		if (r)
			continue;
		if (words && isspace((unsigned char)c)) {
			word_end(L, sb, words, line, col);
			L->p++;
		} else if (c == '\\' && L->p + 1 < L->end && !sp->raw) {
			backslash(L, sp, sb, words != NULL);
		} else {
			buf_add(&sb->b, L->p++, 1);
		}
	}
	L->p = start;
	L->line = start_lineno;
	L->line_start = start_line;
	return lex_err(L, start - 1, "unterminated string");
}

static void set_parts(struct lexer *L, struct tok *t, struct sbuf *sb)
{
	t->parts = sb->parts;
	t->nparts = sb->n;
	buf_free(&sb->b);
	(void)L;
}

static int lex_string(struct lexer *L, enum tk k, const struct strspec *sp, const char *at)
{
	int line = L->line, col = col_of(L, at);
	struct sbuf sb = {.a = L->a};
	if (read_body(L, sp, &sb, NULL) < 0) {
		buf_free(&sb.b);
		return -1;
	}
	struct tok *t = push(L, k, at);
	t->line = line, t->col = col;
	set_parts(L, t, &sb);
	/* "key": value — a label with a quoted name */
	if (k == TK_STR && L->p + 1 < L->end && L->p[0] == ':' && L->p[1] != ':' &&
	    (L->p[1] == ' ' || L->p[1] == '\t') && t->nparts <= 1 && (!t->nparts || !t->parts[0].code)) {
		t->k = TK_LABEL;
		t->s = t->nparts ? t->parts[0].text : "";
		L->p++;
	}
	return 0;
}

static int lex_words(struct lexer *L, const struct strspec *sp, enum tk k, const char *at)
{
	struct sbuf sb = {.a = L->a};
	struct vec words = {0};
	int line = L->line, col = col_of(L, at);
	if (read_body(L, sp, &sb, &words) < 0) {
		buf_free(&sb.b);
		return -1;
	}
	buf_free(&sb.b);
	struct tok *t = push(L, k, at);
	t->line = line, t->col = col;
	t->words = (const char **)words.v;
	t->nwords = words.n;
	return 0;
}

static char closer(char c)
{
	switch (c) {
	case '(': return ')';
	case '[': return ']';
	case '{': return '}';
	case '<': return '>';
	default: return c;
	}
}

/* %w( %i( %q( %Q( %( : returns 1 when it was none of them. */
static int lex_percent(struct lexer *L)
{
	const char *at = L->p;
	char kind = L->p[1], open;
	if (strchr("wWiIqQ", kind) && L->p + 2 < L->end && strchr("([{<|!/", L->p[2])) {
		open = L->p[2];
		L->p += 3;
	} else if (strchr("([{", kind) && !after_value(L)) {
		open = kind;
		kind = 'Q';
		L->p += 2;
	} else {
		return 1;
	}
	struct strspec sp = {open, closer(open), strchr("WIQ", kind) != NULL, false};
	if (kind == 'w' || kind == 'W')
		return lex_words(L, &sp, TK_WORDS, at);
	if (kind == 'i' || kind == 'I')
		return lex_words(L, &sp, TK_SYMWORDS, at);
	return lex_string(L, TK_STR, &sp, at);
}

/* <<ID, <<-ID, <<~ID, quoted or not: the body is read at the line's end. */
static int lex_heredoc_start(struct lexer *L)
{
	const char *q = L->p + 2;
	bool squiggly = *q == '~', dash = *q == '-';
	if (squiggly || dash)
		q++;
	char quote = (*q == '\'' || *q == '"') ? *q : 0;
	if (quote)
		q++;
	if (!ident_start(*q) || (!quote && !squiggly && !dash && !isupper((unsigned char)*q)))
		return 1;
	if (after_value(L) && !squiggly && !dash)
		return 1;
	const char *id = q;
	while (q < L->end && ident_char(*q))
		q++;
	if (quote && *q != quote)
		return 1;
	if (L->npend == sizeof(L->pend) / sizeof(L->pend[0]))
		return lex_err(L, L->p, "too many heredocs on one line");
	push(L, TK_STR, L->p);
	L->pend[L->npend++] = (struct heredoc){L->n - 1, ar_strndup(L->a, id, (size_t)(q - id)),
					       squiggly, dash, quote == '\''};
	L->p = q + (quote != 0);
	return 0;
}

static size_t indent_of(const char *s, const char *e)
{
	size_t n = 0;
	while (s + n < e && (s[n] == ' ' || s[n] == '\t'))
		n++;
	return n;
}

static bool blank_line(const char *s, const char *e)
{
	return s + indent_of(s, e) >= e;
}

/* The lines body..end of a heredoc, without their common indentation for <<~. */
static void heredoc_text(const char *body, const char *end, bool squiggly, struct buf *text)
{
	size_t strip = (size_t)-1;
	for (const char *l = body; squiggly && l < end;) {
		const char *le = memchr(l, '\n', (size_t)(end - l));
		if (!blank_line(l, le) && indent_of(l, le) < strip)
			strip = indent_of(l, le);
		l = le + 1;
	}
	buf_puts(text, "");
	for (const char *l = body; l < end;) {
		const char *le = memchr(l, '\n', (size_t)(end - l));
		size_t cut = squiggly ? indent_of(l, le) : 0;
		if (cut > strip)
			cut = strip;
		buf_add(text, l + cut, (size_t)(le + 1 - l - cut));
		l = le + 1;
	}
}

/* The heredoc's text as its string token's parts, escapes and #{} read
 * unless its id was quoted. The text has no closing delimiter: its NUL ends it. */
static int heredoc_parts(struct lexer *L, const struct heredoc *h, const struct buf *text,
			 int line)
{
	struct lexer sub = *L;
	sub.s = sub.p = sub.line_start = text->s;
	sub.end = text->s + text->len + 1;
	sub.line = line;
	sub.col0 = 0;
	struct strspec sp = {'\0', '\0', !h->raw, h->raw};
	struct sbuf sb = {.a = L->a};
	if (read_body(&sub, &sp, &sb, NULL) < 0) {
		buf_free(&sb.b);
		return -1;
	}
	set_parts(L, &L->v[h->tok], &sb);
	return 0;
}

static void next_line(struct lexer *L, const char *eol)
{
	L->p = eol < L->end ? eol + 1 : eol;
	L->line++;
	L->line_start = L->p;
}

/* The body of one heredoc, from L->p (the start of a line) to its id line. */
static int read_heredoc(struct lexer *L, struct heredoc *h)
{
	const char *body = L->p;
	int body_line = L->line;
	size_t idlen = strlen(h->id);
	while (L->p < L->end) {
		const char *eol = memchr(L->p, '\n', (size_t)(L->end - L->p));
		if (!eol)
			eol = L->end;
		const char *w = L->p + ((h->dash || h->squiggly) ? indent_of(L->p, eol) : 0);
		const char *we = eol;
		while (we > w && (we[-1] == ' ' || we[-1] == '\t' || we[-1] == '\r'))
			we--;
		if ((size_t)(we - w) == idlen && memcmp(w, h->id, idlen) == 0) {
			struct buf text = {0};
			heredoc_text(body, L->p, h->squiggly, &text);
			int rc = heredoc_parts(L, h, &text, body_line);
			buf_free(&text);
			next_line(L, eol);
			return rc;
		}
		next_line(L, eol);
	}
	L->line = L->v[h->tok].line;
	diag_fail(L->d, "heredoc <<%s never ends (no line `%s`)", h->id, h->id);
	L->d->line = L->v[h->tok].line;
	L->d->col = L->v[h->tok].col;
	return -1;
}

/* At a newline: the pending heredocs' bodies follow it. */
static int end_line(struct lexer *L)
{
	L->p++;
	L->line++;
	L->line_start = L->p;
	for (size_t i = 0; i < L->npend; i++)
		if (read_heredoc(L, &L->pend[i]) < 0)
			return -1;
	L->npend = 0;
	return 0;
}

/* Whether the next line that holds code starts with `.method` or `&.`:
 * then the newline continues the statement. */
static bool continues(const struct lexer *L)
{
	const char *p = L->p + 1;
	for (;;) {
		while (p < L->end && (*p == ' ' || *p == '\t' || *p == '\r'))
			p++;
		if (p < L->end && *p == '#') {
			while (p < L->end && *p != '\n')
				p++;
		}
		if (p < L->end && *p == '\n') {
			p++;
			continue;
		}
		break;
	}
	return p + 1 < L->end && ((p[0] == '.' && p[1] != '.') || (p[0] == '&' && p[1] == '.'));
}

static int newline(struct lexer *L)
{
	const struct tok *t = last(L);
	bool cont = L->npend == 0 && continues(L);
	if (!cont && t && t->k != TK_NL)
		push(L, TK_NL, L->p);
	if (!cont)
		return end_line(L);
	/* skip to the `.`, counting lines */
	while (L->p < L->end && *L->p != '.' && *L->p != '&') {
		if (*L->p == '#')
			while (L->p < L->end && *L->p != '\n')
				L->p++;
		if (L->p < L->end && *L->p == '\n') {
			L->line++;
			L->line_start = L->p + 1;
		}
		if (L->p < L->end)
			L->p++;
	}
	return 0;
}

static const char *const ops[] = {
	"**=", "<=>", "===", "...", "<<=", ">>=", "&&=", "||=", "**", "==", "!=", ">=", "<=",
	"&&", "||", "<<", ">>", "+=", "-=", "*=", "/=", "%=", "|=", "&=", "=~", "!~", "..", "::",
	"=>", "->", "&.", "+", "-", "*", "/", "%", "=", "<", ">", "!", "&", "|", "^", "~", "?",
	":", ".", ",", ";", "(", ")", "[", "]", "{", "}", NULL,
};

static int lex_number(struct lexer *L)
{
	const char *at = L->p, *q = L->p;
	char digits[128];
	size_t n = 0;
	int base = 10;
	if (q[0] == '0' && q + 1 < L->end && strchr("xXbBoO", q[1])) {
		base = strchr("xX", q[1]) ? 16 : strchr("bB", q[1]) ? 2 : 8;
		q += 2;
	} else if (q[0] == '0' && q + 1 < L->end && isdigit((unsigned char)q[1])) {
		base = 8;
	}
	bool is_float = false;
	for (; q < L->end && n < sizeof(digits) - 1; q++) {
		if (*q == '_')
			continue;
		if (base == 10 && *q == '.' && q + 1 < L->end && isdigit((unsigned char)q[1]) && !is_float)
			is_float = true;
		else if (base == 10 && (*q == 'e' || *q == 'E') && q + 1 < L->end &&
			 (isdigit((unsigned char)q[1]) || ((q[1] == '-' || q[1] == '+') && q + 2 < L->end &&
							   isdigit((unsigned char)q[2])))) {
			is_float = true;
			digits[n++] = *q++;
		} else if (!(base == 16 ? isxdigit((unsigned char)*q) : isdigit((unsigned char)*q)))
			break;
		digits[n++] = *q;
	}
	digits[n] = '\0';
	struct tok *t = push(L, is_float ? TK_FLOAT : TK_INT, at);
	if (is_float)
		t->f = strtod(digits, NULL);
	else
		t->i = strtoll(digits, NULL, base);
	L->p = q;
	return 0;
}

static int lex_ident(struct lexer *L)
{
	const char *at = L->p, *q = L->p;
	while (q < L->end && ident_char(*q))
		q++;
	if (q < L->end && (*q == '?' || *q == '!') && !(q + 1 < L->end && q[1] == '=' &&
							  !(q + 2 < L->end && q[2] == '=')))
		q++;
	enum tk k = isupper((unsigned char)*at) ? TK_CONST : TK_IDENT;
	/* a label: `key: value` (not `a ? b :c`, not `Foo::Bar`) */
	if (q + 1 < L->end && q[0] == ':' && q[1] != ':' && q[-1] != '?') {
		const struct tok *t = last(L);
		bool ternary = t && t->k == TK_OP && strcmp(t->s, "?") == 0;
		if (!ternary) {
			struct tok *lt = push(L, TK_LABEL, at);
			lt->s = ar_strndup(L->a, at, (size_t)(q - at));
			L->p = q + 1;
			return 0;
		}
	}
	struct tok *t = push(L, k, at);
	t->s = ar_strndup(L->a, at, (size_t)(q - at));
	L->p = q;
	if (strcmp(t->s, "__END__") == 0 && t->col == 1)
		L->p = L->end;
	return 0;
}

static int lex_symbol(struct lexer *L)
{
	const char *at = L->p, *q = L->p + 1;
	if (*q == '"' || *q == '\'') {
		L->p = q + 1;
		struct strspec sp = {*q, *q, *q == '"', false};
		if (lex_string(L, TK_DSYM, &sp, at) < 0)
			return -1;
		return 0;
	}
	if (ident_start(*q)) {
		while (q < L->end && ident_char(*q))
			q++;
		if (q < L->end && strchr("?!=", *q) && !(q + 1 < L->end && strchr("=~>", q[1])))
			q++;
	} else {
		for (const char *const *o = ops; *o; o++)
			if (strncmp(q, *o, strlen(*o)) == 0 && strchr("+-*/%<>=!~[]^&|", **o)) {
				q += strlen(*o);
				break;
			}
		if (q == L->p + 1)
			return 1;
	}
	struct tok *t = push(L, TK_SYM, at);
	t->s = ar_strndup(L->a, L->p + 1, (size_t)(q - L->p - 1));
	L->p = q;
	return 0;
}

static int lex_var(struct lexer *L, enum tk k)
{
	const char *at = L->p, *q = L->p + 1;
	if (*q == '@')
		q++;
	if (!ident_start(*q) && !(k == TK_GVAR && q < L->end && strchr("0123456789!?$~:;", *q)))
		return lex_err(L, at, "a variable name must follow");
	q++;
	while (q < L->end && ident_char(*q))
		q++;
	struct tok *t = push(L, k, at);
	t->s = ar_strndup(L->a, at, (size_t)(q - at));
	L->p = q;
	return 0;
}

static int lex_op(struct lexer *L)
{
	for (const char *const *o = ops; *o; o++) {
		size_t n = strlen(*o);
		if ((size_t)(L->end - L->p) >= n && strncmp(L->p, *o, n) == 0) {
			struct tok *t = push(L, TK_OP, L->p);
			t->s = *o;
			L->p += n;
			return 0;
		}
	}
	return lex_err(L, L->p, "unexpected character");
}

static bool at_line_start(const struct lexer *L) { return L->p == L->line_start; }

static int skip_block_comment(struct lexer *L)
{
	const char *at = L->p, *at_line = L->line_start;
	int line = L->line;
	while (L->p < L->end) {
		const char *eol = memchr(L->p, '\n', (size_t)(L->end - L->p));
		bool stop = strncmp(L->p, "=end", 4) == 0;
		L->p = eol ? eol + 1 : L->end;
		L->line++;
		L->line_start = L->p;
		if (stop)
			return 0;
	}
	L->line = line;
	L->line_start = at_line;
	return lex_err(L, at, "=begin without =end");
}

static int lex_quote(struct lexer *L)
{
	char q = *L->p;
	const char *at = L->p++;
	struct strspec sp = {q, q, q != '\'', false};
	if (q == '`')
		return lex_string(L, TK_XSTR, &sp, at);
	return lex_string(L, TK_STR, &sp, at);
}

static int lex_regex(struct lexer *L)
{
	const char *at = L->p++;
	struct strspec sp = {'/', '/', true, false};
	if (lex_string(L, TK_REGEX, &sp, at) < 0)
		return -1;
	while (L->p < L->end && strchr("imxounse", *L->p))
		L->p++;
	return 0;
}

/* One token (or skipped text) at L->p; 1: nothing special, try operators. */
static int lex_one(struct lexer *L)
{
	char c = *L->p, n = L->p + 1 < L->end ? L->p[1] : '\0';
	if (c == '\n')
		return newline(L);
	if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
		L->p++;
		L->sp = true;
		return 0;
	}
	if (c == '\\' && n == '\n') {
		L->p += 2;
		L->line++;
		L->line_start = L->p;
		L->sp = true;
		return 0;
	}
	if (c == '#') {
		while (L->p < L->end && *L->p != '\n')
			L->p++;
		return 0;
	}
	if (c == '=' && at_line_start(L) && strncmp(L->p, "=begin", 6) == 0)
		return skip_block_comment(L);
	if (isdigit((unsigned char)c))
		return lex_number(L);
	if (ident_start(c))
		return lex_ident(L);
	if (c == '"' || c == '\'' || c == '`')
		return lex_quote(L);
	if (c == ':' && n != ':' && (n == '"' || n == '\'' || ident_start(n) || !after_value(L))) {
		int r = lex_symbol(L);
		if (r <= 0)
			return r;
	}
	if (c == '@')
		return lex_var(L, TK_IVAR);
	if (c == '$')
		return lex_var(L, TK_GVAR);
	if (c == '%') {
		int r = lex_percent(L);
		if (r <= 0)
			return r;
	}
	if (c == '<' && n == '<') {
		int r = lex_heredoc_start(L);
		if (r <= 0)
			return r;
	}
	if (c == '/' && !after_value(L))
		return lex_regex(L);
	return lex_op(L);
}

/* Length of the UTF-8 character at p (0: not one). */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
		   : (*p & 0xf8) == 0xf0 ? 4 : 0;
	if (!n || (size_t)(end - p) < n || (n == 2 && *p < 0xc2))
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	unsigned long c = n == 2 ? (p[0] & 0x1fu) << 6 | (p[1] & 0x3f)
			  : n == 3 ? (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3f)
			  : n == 4 ? (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 |
					     (p[3] & 0x3f)
				   : p[0];
	bool overlong = (n == 3 && c < 0x800) || (n == 4 && (c < 0x10000 || c > 0x10ffff));
	return overlong || (c >= 0xd800 && c < 0xe000) ? 0 : n;
}

/* Ruby reads source as UTF-8: anything else is refused where it starts,
 * and so is a NUL byte (corral's strings end there). */
static int check_utf8(struct lexer *L)
{
	const unsigned char *p = (const unsigned char *)L->s, *end = (const unsigned char *)L->end;
	while (p < end) {
		size_t n = *p ? utf8_len(p, end) : 0;
		if (!n) {
			L->p = (const char *)p;
			return lex_err(L, L->p, *p ? "not UTF-8 text" : "a NUL byte in the file");
		}
		if (*p == '\n') {
			L->line++;
			L->line_start = (const char *)p + 1;
		}
		p += n;
	}
	L->line = 1;
	L->line_start = L->s;
	L->p = L->s;
	return 0;
}

int vf_lex(struct arena *a, const char *src, size_t len, int line0, int col0, struct tok **out,
	   size_t *n, struct diag *d)
{
	struct lexer L = {.a = a, .s = src, .end = src + len, .p = src, .line = line0,
			  .line_start = src, .col0 = col0 ? col0 - 1 : 0, .d = d};
	if (line0 == 1 && col0 == 1 && check_utf8(&L) < 0)
		return -1;
	while (L.p < L.end)
		if (lex_one(&L) < 0)
			return -1;
	if (L.npend) {
		const struct tok *t = &L.v[L.pend[0].tok];
		diag_fail(d, "heredoc <<%s never ends (no line `%s`)", L.pend[0].id, L.pend[0].id);
		d->line = t->line;
		d->col = t->col;
		return -1;
	}
	if (last(&L) && last(&L)->k != TK_NL)
		push(&L, TK_NL, L.p);
	push(&L, TK_EOF, L.p);
	*out = L.v;
	*n = L.n;
	return 0;
}
