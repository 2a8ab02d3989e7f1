#!/usr/bin/awk -f
# manex.awk - the example command lines of an mdoc(7) page, for
# 16-examples.bats:
#
#	awk -f manex.awk PAGE
#
# reads the EXAMPLES section of PAGE and prints one record per command,
# each field ended by a NUL byte:
#
#	LINE KIND COMMAND OUTPUT
#
# LINE is the page line the command starts on.  KIND is "shell" for a line
# that starts with the prompt "$ " (in a .Bd -literal block or a .Dl
# line), "cron" for a crontab(5) line (five time fields, or @daily and the
# like; the command is what follows them, with cron's \% made %), and "env"
# for a NAME=value line in a crontab block.  A shell command goes on over
# the indented lines after it (a continued line, or an open quote).
# OUTPUT is the lines printed after a shell command up to the next prompt
# or the end of its block, as the page shows them.  Other lines of a
# literal block (a script, a key file) are not commands and are skipped.
# Roff escapes (\e, \(dq, \(aq, \-, \&) are undone.

function unroff(s) {
	gsub(/\\\(dq/, "\"", s)
	gsub(/\\\(aq/, "'", s)
	gsub(/\\-/, "-", s)
	gsub(/\\&/, "", s)
	gsub(/\\e/, "\\", s)
	return s
}

function field(s) {
	printf "%s%c", s, 0
}

# flush - print the shell command being collected, if any
function flush() {
	if (cmd == "")
		return
	field(cmdline); field("shell"); field(cmd); field(out)
	cmd = out = ""
}

# literal - one line of a literal block (or a .Dl line) of block b
function literal(n, s, b,    nf, f, i, rest) {
	if (b != block || substr(s, 1, 2) == "$ ")
		flush()
	block = b
	if (substr(s, 1, 2) == "$ ") {
		cmdline = n
		cmd = substr(s, 3)
		return
	}
	if (cmd != "" && out == "" && s ~ /^[ \t]/) {
		cmd = cmd "\n" s
		return
	}
	if (cmd != "") {
		out = out s "\n"
		return
	}
	nf = split(s, f, /[ \t]+/)
	if (f[1] ~ /^@[a-z]+$/ && nf > 1) {
		rest = s
		sub(/^@[a-z]+[ \t]+/, "", rest)
	} else if (nf > 5) {
		for (i = 1; i <= 5; i++)
			if (f[i] !~ /^[-0-9*\/,]+$/)
				break
		if (i <= 5)
			rest = ""
		else {
			rest = s
			for (i = 1; i <= 5; i++)
				sub(/^[-0-9*\/,]+[ \t]+/, "", rest)
		}
	} else
		rest = ""
	if (rest != "") {
		gsub(/\\%/, "%", rest)
		field(n); field("cron"); field(rest); field("")
	} else if (s ~ /^[A-Za-z_][A-Za-z0-9_]*=[^ \t]*$/) {
		field(n); field("env"); field(s); field("")
	}
}

/^\.Sh / {
	flush()
	on = $0 == ".Sh EXAMPLES"
	next
}
!on { next }
/^\.Bd/ && / -literal/ { lit = 1; nblock++; next }
/^\.Ed/ { lit = 0; next }
lit { literal(NR, unroff($0), nblock); next }
/^\.Dl / { nblock++; literal(NR, unroff(substr($0, 5)), nblock); next }
END { flush() }
