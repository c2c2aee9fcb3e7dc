# prototypes (name \t signature \t "type name|type name...") -> name \t kinds
# kinds: comma list of path, fd, FILE, DIR (a directory stream or an fts
# walk), fds (a struct that carries
# descriptors: aiocb, msghdr, spawn file actions, an io_uring and its
# setup parameters); "-" = none.
function kind(t, nm,   base) {
	base = t; gsub(/restrict|const|volatile/, "", base); gsub(/  +/, " ", base); sub(/^ /, "", base); sub(/ $/, "", base)
	if (base ~ /(^|[^A-Za-z_])(FILE|struct _IO_FILE) \*/) return "FILE"
	if (base ~ /(^|[^A-Za-z_])(DIR|FTS|FTS64|FTSENT|FTSENT64) \*/) return "DIR"
	if (base ~ /^struct (aiocb|aiocb64|msghdr|mmsghdr|io_uring|io_uring_params) \*/ || base ~ /posix_spawn_file_actions_t \*/) return "fds"
	if (base ~ /^(unsigned )?(int|long|short)$/ && nm ~ /fd|fildes/ && nm !~ /^__(fdslen|nfds|fdtype)$/) return "fd"

	if (base ~ /char \*( \*)?$/ && nm ~ PATHRE) return "path"
	if (base ~ /char \*( \* ?)?$/ && nm == "-") return "path?"
	return ""
}
BEGIN { FS = "\t"; PATHRE = "^__?(file|fname|filename|path|pathname|from_pathname|to_pathname|dir|special|special_file|fs_name|template|wtmp_file|wtmpx_file|name|old|new|from|to|oldpath|newpath|file1|file2|dev|device|source|target)$" }
{
	n = split($3, p, "|"); ks = ""
	for (i = 1; i <= n; i++) {
		t = p[i]; nm = t; sub(/.* /, "", nm); sub(/ [^ ]*$/, "", t)
		k = kind(t, nm)
		if (k != "" && index("," ks ",", "," k ",") == 0) ks = ks (ks == "" ? "" : ",") k
	}
	if ($2 ~ /(^|[^A-Za-z_])(FILE|DIR) \*\(/ && index("," ks ",", ",FILE,") == 0 && $2 ~ /^FILE/) ks = ks (ks == "" ? "" : ",") "FILE"
	print $1 "\t" (ks == "" ? "-" : ks)
}
