#!/usr/bin/perl
# A partner encrypting to us with Crypt::JWT (Debian 12: libcrypt-jwt-perl), used as its docs say.
#
#   /usr/bin/perl test/clients/crypt_jwt_encrypt.pl JWKS_URL KID ALG ENC COUNT PLAINTEXT
#
# Fetches the JWKS, takes the key with that kid, makes COUNT compact JWEs, and prints one JSON
# line: {"library": "Crypt::JWT", "version": V, "jwes": [...]}. A failure exits non-zero.
use strict;
use warnings;
use Crypt::JWT qw(encode_jwt);
use HTTP::Tiny;
use JSON::PP qw(decode_json encode_json);

my ($jwks_url, $kid, $alg, $enc, $count, $plaintext) = @ARGV;
die "usage: $0 JWKS_URL KID ALG ENC COUNT PLAINTEXT\n" unless defined $plaintext;
my $response = HTTP::Tiny->new(timeout => 10)->get($jwks_url);
die "GET $jwks_url: $response->{status} $response->{reason}\n" unless $response->{success};
my ($jwk) = grep { ($_->{kid} // '') eq $kid } @{ decode_json($response->{content})->{keys} };
die "no key with kid $kid at $jwks_url\n" unless $jwk;
# A JWK as a hash reference is one of the key forms Crypt::JWT documents.
my @jwes = map { encode_jwt(payload => $plaintext, key => $jwk, alg => $alg, enc => $enc, extra_headers => { kid => $kid }) } 1 .. $count;
print encode_json({ library => 'Crypt::JWT', version => "$Crypt::JWT::VERSION", jwes => \@jwes }), "\n";
