# Copyright 2026 chrootforge authors
# Distributed under the terms of the MIT license

EAPI=8

inherit toolchain-funcs

DESCRIPTION="A small, fast HTTP server (the static-file core, with gzip and rewrite)"
HOMEPAGE="https://nginx.org/"
SRC_URI="https://nginx.org/download/${P}.tar.gz"

LICENSE="BSD-2"
SLOT="0"
KEYWORDS="amd64"
# NGINX_MODULES_HTTP (a USE_EXPAND variable, set in the profile) chooses them.
IUSE="nginx_modules_http_gzip nginx_modules_http_rewrite"

# The account is needed where the image is built too: fowners looks it up there.
DEPEND="
	acct-group/nginx
	acct-user/nginx
	nginx_modules_http_gzip? ( sys-libs/zlib:= )
	nginx_modules_http_rewrite? ( dev-libs/libpcre2:= )
"
RDEPEND="${DEPEND}"

# The modules nginx builds by default that this package leaves out.
NGINX_LEFT_OUT=(
	auth_basic autoindex browser charset empty_gif fastcgi geo grpc limit_conn limit_req map
	memcached mirror proxy referer scgi split_clients ssi upstream_hash upstream_ip_hash
	upstream_keepalive upstream_least_conn upstream_random upstream_zone userid uwsgi
)

src_configure() {
	local module args=()
	for module in "${NGINX_LEFT_OUT[@]}"; do
		args+=( --without-http_${module}_module )
	done
	use nginx_modules_http_gzip || args+=( --without-http_gzip_module )
	use nginx_modules_http_rewrite || args+=( --without-http_rewrite_module --without-pcre )

	# nginx's configure takes CFLAGS from the environment as they are; it is not
	# autoconf, so no econf. The temporary paths sit where the user nginx may write.
	tc-export CC
	./configure \
		--prefix="${EPREFIX}/usr" \
		--sbin-path="${EPREFIX}/usr/sbin/nginx" \
		--conf-path="${EPREFIX}/etc/nginx/nginx.conf" \
		--error-log-path="${EPREFIX}/var/log/nginx/error_log" \
		--http-log-path="${EPREFIX}/var/log/nginx/access_log" \
		--pid-path="${EPREFIX}/run/nginx.pid" \
		--lock-path="${EPREFIX}/run/lock/nginx.lock" \
		--http-client-body-temp-path="${EPREFIX}/var/lib/nginx/tmp/client" \
		--user=nginx \
		--group=nginx \
		--with-cc="$(tc-getCC)" \
		--with-cpp="$(tc-getCPP)" \
		--with-ld-opt="${LDFLAGS}" \
		"${args[@]}" \
		|| die "configure failed"
}

src_install() {
	dosbin objs/nginx
	insinto /etc/nginx
	doins conf/mime.types
	newins "${FILESDIR}/nginx.conf" nginx.conf
	insinto /var/www/localhost/htdocs
	doins html/index.html
	keepdir /var/log/nginx /var/lib/nginx/tmp/client
	fowners nginx:nginx /var/lib/nginx/tmp /var/lib/nginx/tmp/client
	fperms 0700 /var/lib/nginx/tmp /var/lib/nginx/tmp/client
	einstalldocs
}
