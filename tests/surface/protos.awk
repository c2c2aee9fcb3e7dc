# clang -ast-dump text -> name \t params (type name, '|'-separated); the declaration with the most named params wins
function flush() {
	if (cur == "") return
	if (!(cur in best) || nn > bestn[cur]) { best[cur] = ps; bestn[cur] = nn; sig[cur] = cursig }
	cur = ""
}
/^[|`]-/ { flush() }
/^[|`]-FunctionDecl / {
	line = $0
	q = index(line, "'"); pre = substr(line, 1, q - 1); cursig = substr(line, q + 1); sub(/'.*/, "", cursig)
	n = split(pre, w, " "); cur = w[n]; ps = ""; nn = 0; np = 0
	next
}
cur != "" && /^[|` ] [|`]-ParmVarDecl / {
	line = $0
	q = index(line, "'"); pre = substr(line, 1, q - 1); t = substr(line, q + 1); sub(/'.*/, "", t)
	n = split(pre, w, " "); nm = w[n]
	if (nm ~ /^col:|^line:|>$/ || nm ~ /sloc>$/) nm = "-"
	else nn++
	ps = ps (np++ ? "|" : "") t " " nm
}
END { flush(); for (f in best) print f "\t" sig[f] "\t" best[f] }
