/* corral import's translation, checked through the envfile loader: Ruby
 * strings of every awkward kind reach a shell step's script byte for byte
 * (quoting, literal blocks, heredocs, $ under ${VAR} expansion), loops and
 * conditions compute what Ruby would, and what cannot be parsed fails at
 * its line and column. The corpus of whole Vagrantfiles is
 * tests/integration/import.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/config/envfile.h"
#include "core/vagrant/vagrantfile.h"
#include "tests/unit/t.h"

static struct vf_result res;

/* Imports a Vagrantfile and loads what it wrote; NULL (reported) on failure. */
static struct env *import(const char *rb)
{
	struct vf_opts o = {.name = "Vagrantfile", .src_dir = "/nonexistent/unit"};
	struct diag d = {0};
	vf_result_free(&res);
	if (vagrantfile_import(&o, rb, strlen(rb), &res, &d) < 0) {
		printf("#   import failed: %d:%d: %s\n", d.line, d.col, d.msg);
		return NULL;
	}
	struct env *e = NULL;
	struct diag_list errs = {0};
	if (envfile_load_buffer("/nonexistent/unit/corral.yaml", res.yaml, strlen(res.yaml),
				ENVFILE_NO_FS, &e, &errs) < 0) {
		printf("#   does not load:\n%s", res.yaml);
		for (size_t i = 0; i < errs.n; i++)
			printf("#   %d:%d: %s\n", errs.v[i].line, errs.v[i].col, errs.v[i].msg);
	}
	diag_list_free(&errs);
	return e;
}

/* The script of the first step of the first machine, for `inline: LITERAL`. */
static char *script_of(const char *literal)
{
	_cleanup_free_ char *rb = xasprintf("Vagrant.configure(\"2\") do |config|\n"
					    "  config.vm.box = \"b\"\n"
					    "  config.vm.provision \"shell\", inline: %s\n"
					    "end\n",
					    literal);
	struct env *e = import(rb);
	char *s = e && e->machines[0].nsteps ? xstrdup(e->machines[0].steps[0].shell.inline_script)
					     : NULL;
	env_free(e);
	return s;
}

static const struct {
	const char *ruby, *value;
} strings[] = {
	{"\"plain\"", "plain"},
	{"\"yes\"", "yes"},
	{"\"1.0\"", "1.0"},
	{"\"0x1F\"", "0x1F"},
	{"\"1e3\"", "1e3"},
	{"\"12:30\"", "12:30"},
	{"\"null\"", "null"},
	{"\"~\"", "~"},
	{"\"- dash\"", "- dash"},
	{"\": colon\"", ": colon"},
	{"\"a: b\"", "a: b"},
	{"\"x #y\"", "x #y"},
	{"\"#hash\"", "#hash"},
	{"\" lead\"", " lead"},
	{"\"trail \"", "trail "},
	{"\"tab\\tin\"", "tab\tin"},
	{"\"{brace} [b], *s &a !b |p >g 'q' %p @a `b`\"", "{brace} [b], *s &a !b |p >g 'q' %p @a `b`"},
	{"\"quote \\\" and \\\\ backslash\"", "quote \" and \\ backslash"},
	{"\"esc \\e[0m\"", "esc \033[0m"},
	{"\"unicode \\u00e9 \\u{2713} é\"", "unicode é ✓ é"},
	{"'single $$ #{x} \\\\ \\' \\n'", "single $$ #{x} \\ ' \\n"},
	{"\"$HOME ${X} $$ $ $${Y}\"", "$HOME ${X} $$ $ $${Y}"},
	{"\"new\\nline\"", "new\nline"},
	{"\"a\\n\"", "a\n"},
	{"\"\\n\\nlead\"", "\n\nlead"},
	{"\"trail\\n\\n\"", "trail\n\n"},
	{"\"  indented\\nnext\\n\"", "  indented\nnext\n"},
	{"\"\\tfirst tab\\n\"", "\tfirst tab\n"},
	{"\"cr\\r\\nlf\"", "cr\r\nlf"},
	{"%Q(paren (nested) #{1 + 2})", "paren (nested) 3"},
	{"%q(raw #{x})", "raw #{x}"},
	{"\"a\" + 'b' * 3", "abbb"},
	{"\"node%02d\" % 7", "node07"},
	{"format(\"%s-%d\", :web, 2)", "web-2"},
	{"[\"a\", \"b\"].join(\",\")", "a,b"},
	{"(1..3).map { |i| i * 2 }.join(\" \")", "2 4 6"},
	{"{ x: 1 }.fetch(:y, \"dflt\")", "dflt"},
	{"\"up\".upcase + :sym.to_s", "UPsym"},
};

static void test_strings(void)
{
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		_cleanup_free_ char *got = script_of(strings[i].ruby);
		if (!got || strcmp(got, strings[i].value)) {
			printf("#   %s: got \"%s\"\n", strings[i].ruby, got ? got : "(nothing)");
			t_case_failed = 1;
		}
	}
}

static const struct {
	const char *ruby, *value;
} heredocs[] = {
	{"<<~EOS\n    a\n      b\n\n    c\n  EOS", "a\n  b\n\nc\n"},
	{"<<-EOS\n    a\n  EOS", "    a\n"},
	{"<<EOS\n  a #{1 + 1}\nEOS", "  a 2\n"},
	{"<<~'EOS'\n  raw \\n #{x} $$\n  EOS", "raw \\n #{x} $$\n"},
	{"<<~EOS.strip\n  trimmed\n  EOS", "trimmed"},
};

static void test_heredocs(void)
{
	for (size_t i = 0; i < sizeof(heredocs) / sizeof(heredocs[0]); i++) {
		_cleanup_free_ char *got = script_of(heredocs[i].ruby);
		if (!got || strcmp(got, heredocs[i].value)) {
			printf("#   %s: got \"%s\"\n", heredocs[i].ruby, got ? got : "(nothing)");
			t_case_failed = 1;
		}
	}
}

/* Two heredocs on one line, and a statement after them. */
static void test_two_heredocs(void)
{
	struct env *e = import("Vagrant.configure(\"2\") do |c|\n"
			       "  c.vm.box = \"b\"\n"
			       "  c.vm.provision \"shell\", inline: <<~A, env: { \"X\" => <<~B }\n"
			       "    first\n"
			       "  A\n"
			       "    second\n"
			       "  B\n"
			       "  c.vm.hostname = \"after\"\n"
			       "end\n");
	CHECK(e && e->nmachines == 1);
	if (!e)
		return;
	CHECK_STR(e->machines[0].steps[0].shell.inline_script, "first\n");
	CHECK_STR(e->machines[0].steps[0].shell.env[0].value, "second\n");
	CHECK_STR(e->machines[0].hostname, "after");
	env_free(e);
}

static void test_loops_fold_into_count(void)
{
	struct env *e = import("Vagrant.configure(\"2\") do |c|\n"
			       "  c.vm.box = \"b\"\n"
			       "  c.vm.synced_folder \".\", \"/vagrant\", disabled: true\n"
			       "  3.times do |i|\n"
			       "    c.vm.define \"web-#{i + 1}\" do |w|\n"
			       "      w.vm.hostname = \"web-#{i + 1}\"\n"
			       "    end\n"
			       "  end\n"
			       "  c.vm.define \"db\"\n"
			       "end\n");
	CHECK(e && e->nmachines == 4);
	if (!e)
		return;
	CHECK_STR(e->machines[2].name, "web-3");
	CHECK_STR(e->machines[2].base_name, "web");
	CHECK(e->machines[2].count == 3);
	CHECK_STR(e->machines[3].name, "db");
	CHECK(res.nmachines == 2);
	CHECK_STR(res.machines[0], "web (web-1..web-3)");
	env_free(e);
}

static void test_conditions_and_hashes(void)
{
	struct env *e = import("NODES = { \"a\" => { ip: \"10.9.0.5\", mem: 1024 },\n"
			       "          \"b\" => { ip: \"10.9.0.6\", mem: 2048 } }\n"
			       "Vagrant.configure(\"2\") do |c|\n"
			       "  c.vm.box = \"b\"\n"
			       "  NODES.each_with_index do |(name, o), idx|\n"
			       "    c.vm.define name do |m|\n"
			       "      m.vm.network :private_network, ip: o[:ip]\n"
			       "      m.vm.provider(:virtualbox) { |vb| vb.memory = o[:mem] }\n"
			       "      m.vm.hostname = idx.zero? ? \"first\" : \"second\" unless name == \"x\"\n"
			       "    end\n"
			       "  end\n"
			       "end\n");
	CHECK(e && e->nmachines == 2);
	if (!e)
		return;
	CHECK_STR(e->machines[1].networks[0].ip, "10.9.0.6");
	CHECK_STR(e->networks[0].subnet, "10.9.0.0/24");
	CHECK(e->machines[1].memory == 2048ull << 20);
	CHECK_STR(e->machines[0].hostname, "first");
	CHECK_STR(e->machines[1].hostname, "second");
	env_free(e);
}

static bool has_note(int line, bool imported, const char *text)
{
	for (size_t i = 0; i < res.nnotes; i++)
		if (res.notes[i].line == line && res.notes[i].imported == imported &&
		    strstr(res.notes[i].text, text))
			return true;
	return false;
}

static void test_notes(void)
{
	struct env *e = import("Vagrant.configure(\"2\") do |c|\n"
			       "  c.vm.box = ENV['BOX'] || \"b\"\n"
			       "  c.vm.network \"public_network\"\n"
			       "  if Vagrant.has_plugin?(\"x\")\n"
			       "    c.vm.box = \"other\"\n"
			       "  end\n"
			       "  c.vm.provision \"puppet\"\n"
			       "end\n");
	CHECK(e != NULL);
	CHECK(has_note(2, true, "ENV['BOX'] is read as unset"));
	CHECK(has_note(3, false, "corral has no public (bridged) networks"));
	CHECK(has_note(4, false, "if Vagrant.has_plugin?(\"x\") … (3 lines) — a condition on whether"));
	CHECK(has_note(7, false, "corral has no puppet provisioner"));
	CHECK(strstr(res.yaml, "# not imported (Vagrantfile line 3): c.vm.network \"public_network\""));
	CHECK_STR(e ? e->machines[0].box : NULL, "b");
	env_free(e);
}

static const struct {
	const char *ruby, *msg;
	int line, col;
} broken[] = {
	{"x = \"open\n", "unterminated string", 1, 5},
	{"a = 1\nb = <<~EOS\n  text\n", "heredoc <<EOS never ends (no line `EOS`)", 2, 5},
	{"foo do\n  bar\n", "`do` has no matching `end`", 1, 5},
	{"x = [1, 2\n", "`[` is never closed", 1, 5},
	{"end\n", "`end` closes nothing", 1, 1},
	{"x = (1]\n", "`]` does not close what is open here", 1, 7},
	{"ok = 1\nbad = \"caf\xe9\"\n", "not UTF-8 text", 2, 11},
	{"=begin\nnever ends\n", "=begin without =end", 1, 1},
};

static void test_broken(void)
{
	struct vf_opts o = {.name = "Vagrantfile", .src_dir = "/nonexistent/unit"};
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		struct vf_result r;
		struct diag d = {0};
		int rc = vagrantfile_import(&o, broken[i].ruby, strlen(broken[i].ruby), &r, &d);
		if (rc == 0 || strcmp(d.msg, broken[i].msg) || d.line != broken[i].line ||
		    d.col != broken[i].col || strcmp(d.file, "Vagrantfile")) {
			printf("#   %d: %s:%d:%d: %s\n", (int)i, d.file, d.line, d.col, d.msg);
			t_case_failed = 1;
		}
		if (rc == 0)
			vf_result_free(&r);
	}
}

/* A statement corral import cannot parse costs that statement only. */
static void test_unparsed_statement(void)
{
	struct env *e = import("Vagrant.configure(\"2\") do |c|\n"
			       "  c.vm.box = \"b\"\n"
			       "  x = y rescue z\n"
			       "  c.vm.hostname = \"kept\"\n"
			       "end\n");
	CHECK(e && has_note(3, false, "x = y rescue z"));
	CHECK_STR(e ? e->machines[0].hostname : NULL, "kept");
	env_free(e);
}

int main(void)
{
	RUN(test_strings);
	RUN(test_heredocs);
	RUN(test_two_heredocs);
	RUN(test_loops_fold_into_count);
	RUN(test_conditions_and_hashes);
	RUN(test_notes);
	RUN(test_broken);
	RUN(test_unparsed_statement);
	vf_result_free(&res);
	return T_END();
}
