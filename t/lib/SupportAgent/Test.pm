package SupportAgent::Test;

# Glue for the Test::Nginx suites of the support-agent module.
#
#   use Test::Nginx::Socket 'no_plan';
#   use SupportAgent::Test;            # or: use SupportAgent::Test require_key => 'sk-test';
#   run_tests();
#
# On import:
#  * starts t/llm_server.py (Debian's /usr/bin/python3) on a free port and sets
#    $ENV{TEST_NGINX_LLM_PORT} (and TEST_NGINX_LLM_URL = http://127.0.0.1:PORT/v1), so blocks
#    can say  support_agent_llm_url http://127.0.0.1:$TEST_NGINX_LLM_PORT/v1;
#  * starts t/kb_server.py, the retrieval services (OpenAI/TEI embeddings, Cohere/TEI rerank,
#    Qdrant REST; see its docstring), on another free port and sets $ENV{TEST_NGINX_KB_PORT}
#    (and TEST_NGINX_KB_URL = http://127.0.0.1:PORT): embeddings at $TEST_NGINX_KB_URL/v1,
#    TEI at $TEST_NGINX_KB_URL, Qdrant at $TEST_NGINX_KB_URL (a scenario goes in front:
#    http://127.0.0.1:$TEST_NGINX_KB_PORT/fail=503:1/v1). $TEST_NGINX_KB (no suffix) is
#    still the path of the sample knowledge base file, see below.
#  * starts t/helpdesk_server.py, the recording helpdesk (the ticket webhook of handoffs; see
#    its docstring), on a third free port and sets $ENV{TEST_NGINX_HELPDESK_PORT} (and
#    TEST_NGINX_HELPDESK_URL = http://127.0.0.1:PORT): tickets are POSTed to
#    $TEST_NGINX_HELPDESK_URL/tickets, or with a scenario in front,
#    http://127.0.0.1:$TEST_NGINX_HELPDESK_PORT/fail=503:2/tickets. GET /tickets lists the
#    tickets it created (one per Idempotency-Key, with their deliveries); GET
#    /tickets?min=1&wait=5 first waits up to 5 s for one (the workers deliver them later).
#  * starts t/shop_server.py, the demo shop's order API (the company API of the actions;
#    docs/shop-api.md), seeded with t/fixtures/shop-seed.json, on a fourth free port and sets
#    $ENV{TEST_NGINX_SHOP_PORT} (and TEST_NGINX_SHOP_URL = http://127.0.0.1:PORT/api; a
#    scenario goes in front of /api). POST /_reset restores the seed; GET /_refunds lists
#    the refunds made.
#    The servers are stopped in an END block (also when the test dies) and exit on their own
#    when this process goes away. Recorded requests: GET /_requests on any of the ports (reach
#    it through a proxy_pass location); DELETE /_requests clears them (kb_server: /_reset also
#    drops its Qdrant collections; helpdesk_server: /_reset also drops its tickets).
#  * sets $ENV{TEST_NGINX_STORE_DIR} (one conversation store per test file run) and
#    $ENV{TEST_NGINX_KB} (the sample help center built by kb-build, see sample_kb()).
#  * registers a block preprocessor that prepends  load_module <abs path>;  to main_config.
#    The path is $ENV{MODULE_SO}, else <repo>/build/nginx/ngx_http_support_agent_module.so.
#
# Import options: require_key => KEY (LLM answers 401 unless "Bearer KEY"; also sets
# $ENV{TEST_NGINX_LLM_KEY}), server_args => [...] (extra llm_server.py arguments),
# kb_require_key => KEY (every kb_server service wants KEY; sets $ENV{TEST_NGINX_KB_KEY}),
# kb_server_args => [...] (extra kb_server.py arguments), helpdesk_require_key => KEY (the
# helpdesk wants "Authorization: Bearer KEY"; sets $ENV{TEST_NGINX_HELPDESK_KEY}),
# helpdesk_server_args => [...] (extra helpdesk_server.py arguments), shop_require_key =>
# KEY (sets $ENV{TEST_NGINX_SHOP_KEY}), shop_server_args => [...].
# Without import (use SupportAgent::Test ();) nothing starts: call start_llm_server(%opt) /
# start_kb_server(%opt) / start_helpdesk_server(%opt) (same options without the kb_ /
# helpdesk_ prefix), which return the port.
# Environment: SA_LLM_VERBOSE=1 logs every request of the servers to stderr;
# SA_LLM_RECORD_DIR=DIR writes the request bodies of each test file's servers to
# DIR/<test name> (llm_server: NNNNNN.json), DIR/<test name>-kb (kb_server:
# NNNNNN-<service>.json) and DIR/<test name>-helpdesk (helpdesk_server: NNNNNN-ticket.json;
# `t/helpdesk_server.py check DIR` validates them); SA_NO_LLM_SERVER=1 / SA_NO_KB_SERVER=1 /
# SA_NO_HELPDESK_SERVER=1 start no such server (TEST_NGINX_LLM_PORT / TEST_NGINX_KB_PORT /
# TEST_NGINX_HELPDESK_PORT must then be set).

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Spec;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Time::HiRes ();

my $REPO = abs_path(File::Spec->catdir(dirname(abs_path(__FILE__)), '..', '..', '..'));

our ($LLM_PID, $LLM_PORT, $KB_PID, $KB_PORT, $HELPDESK_PID, $HELPDESK_PORT, $SHOP_PID,
     $SHOP_PORT, $OWNER_PID, $REGISTERED);

# For the plain Test::More files that drive nginx themselves: a free TCP
# port on 127.0.0.1, and waiting (up to 5 s) until something listens on one.
sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0) or die $!;
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub wait_port {
    my ($p) = @_;
    my $t = Time::HiRes::time();
    while (Time::HiRes::time() - $t < 5) {
        return 1 if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p");
        Time::HiRes::sleep(0.05);
    }
    return 0;
}

sub repo_root { $REPO }

sub module_so {
    my $so = $ENV{MODULE_SO};
    $so = File::Spec->catfile($REPO, 'build', 'nginx', 'ngx_http_support_agent_module.so')
        unless defined $so && length $so;
    return File::Spec->rel2abs($so);
}

sub llm_port { $LLM_PORT }
sub kb_port { $KB_PORT }
sub helpdesk_port { $HELPDESK_PORT }

# start_server(SCRIPT, record_suffix => S, require_key => KEY, server_args => [...]):
# starts t/SCRIPT.py on a free port, waits for its port file; returns (pid, port).
sub start_server {
    my ($script, %opt) = @_;
    my $dir = tempdir("sa-$script-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    my $port_file = "$dir/port";
    my @cmd = ('/usr/bin/python3', "$REPO/t/$script.py", '--host', '127.0.0.1', '--port', '0',
               '--port-file', $port_file, '--parent-pid', $$);
    push @cmd, '--quiet' unless $ENV{SA_LLM_VERBOSE};
    if ($ENV{SA_LLM_RECORD_DIR}) {
        # one folder per test file and server: files run in parallel, each
        # with its own servers numbering their records from 1
        (my $name = File::Basename::basename($0)) =~ s/\.t$//;
        my $rec = "$ENV{SA_LLM_RECORD_DIR}/$name" . ($opt{record_suffix} // '');
        mkdir $ENV{SA_LLM_RECORD_DIR};
        mkdir $rec;
        push @cmd, '--record-dir', $rec;
    }
    push @cmd, '--require-key', $opt{require_key} if defined $opt{require_key};
    push @cmd, @{ $opt{server_args} } if $opt{server_args};

    my $pid = fork();
    die "SupportAgent::Test: fork failed: $!\n" unless defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';    # keep "listening on" out of the TAP stream
        exec @cmd or POSIX::_exit(127);
    }
    $OWNER_PID = $$;

    my $deadline = Time::HiRes::time() + 5;
    while (Time::HiRes::time() < $deadline) {
        if (open my $fh, '<', $port_file) {
            my $p = <$fh>;
            close $fh;
            return ($pid, $1) if defined $p && $p =~ /^(\d+)/;
        }
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            die "SupportAgent::Test: t/$script.py exited early (status $?)\n";
        }
        Time::HiRes::sleep(0.05);
    }
    stop_server($pid);
    die "SupportAgent::Test: t/$script.py did not report its port within 5 s\n";
}

sub stop_server {
    my ($pid) = @_;
    return unless $pid && defined $OWNER_PID && $OWNER_PID == $$;
    kill 'TERM', $pid;
    my $deadline = Time::HiRes::time() + 3;
    while (Time::HiRes::time() < $deadline) {
        return if waitpid($pid, POSIX::WNOHANG()) != 0;
        Time::HiRes::sleep(0.02);
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub start_llm_server {
    my (%opt) = @_;
    return $LLM_PORT if $LLM_PID;
    ($LLM_PID, $LLM_PORT) = start_server('llm_server', %opt);
    return $LLM_PORT;
}

sub start_kb_server {
    my (%opt) = @_;
    return $KB_PORT if $KB_PID;
    ($KB_PID, $KB_PORT) = start_server('kb_server', %opt, record_suffix => '-kb');
    return $KB_PORT;
}

sub start_helpdesk_server {
    my (%opt) = @_;
    return $HELPDESK_PORT if $HELPDESK_PID;
    ($HELPDESK_PID, $HELPDESK_PORT) = start_server('helpdesk_server', %opt, record_suffix => '-helpdesk');
    return $HELPDESK_PORT;
}

sub stop_llm_server {
    return unless defined $OWNER_PID && $OWNER_PID == $$;
    my $pid = $LLM_PID;
    undef $LLM_PID;
    stop_server($pid);
}

sub stop_kb_server {
    return unless defined $OWNER_PID && $OWNER_PID == $$;
    my $pid = $KB_PID;
    undef $KB_PID;
    stop_server($pid);
}

sub start_shop_server {
    my (%opt) = @_;
    return $SHOP_PORT if $SHOP_PID;
    ($SHOP_PID, $SHOP_PORT) = start_server('shop_server', %opt, record_suffix => '-shop');
    return $SHOP_PORT;
}

sub stop_shop_server {
    return unless defined $OWNER_PID && $OWNER_PID == $$;
    my $pid = $SHOP_PID;
    undef $SHOP_PID;
    stop_server($pid);
}

sub stop_helpdesk_server {
    return unless defined $OWNER_PID && $OWNER_PID == $$;
    my $pid = $HELPDESK_PID;
    undef $HELPDESK_PID;
    stop_server($pid);
}

# One conversation store per test file run, so that a rerun starts empty
# while the blocks of one file share it (state across nginx restarts).
our $STORE_DIR;

sub store_dir {
    $STORE_DIR ||= tempdir('sa-store-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    return $STORE_DIR;
}

# The sample help center as a knowledge base, built by `make kb` (or here,
# when the file is missing and kb-build has been built).
sub sample_kb {
    my $kb = $ENV{SA_TEST_KB} || "$REPO/build/kb/helpcenter.kb";
    unless (-f $kb) {
        my $kb_build = "$REPO/build/kb-build";
        if (-x $kb_build) {
            mkdir "$REPO/build/kb";
            # quiet: its report would land in the TAP stream
            system(qq{"$kb_build" index --out "$kb" }
                   . qq{--markdown "$REPO/kb-build/sample-helpcenter" }
                   . qq{>/dev/null 2>&1}) == 0
                or warn "SupportAgent::Test: kb-build failed\n";
        }
    }
    return $kb;
}

sub load_module_preprocessor {
    my $block = shift;
    my $main = $block->main_config;
    $main = '' unless defined $main;
    unless ($main =~ /ngx_http_support_agent_module/) {
        my $so = module_so();
        $block->set_value('main_config', "load_module $so;\n$main");
    }

    my $http = $block->http_config;
    $http = '' unless defined $http;
    unless ($http =~ /support_agent_store\s/) {
        my $dir = store_dir();
        $block->set_value('http_config', "support_agent_store $dir/store;\n$http");
    }
}

sub import {
    my ($class, %opt) = @_;
    if ($ENV{SA_NO_LLM_SERVER}) {
        $LLM_PORT = $ENV{TEST_NGINX_LLM_PORT};
    } else {
        start_llm_server(%opt);
    }
    $ENV{TEST_NGINX_LLM_PORT} = $LLM_PORT if defined $LLM_PORT;
    $ENV{TEST_NGINX_LLM_URL} = "http://127.0.0.1:$LLM_PORT/v1" if defined $LLM_PORT;
    $ENV{TEST_NGINX_LLM_KEY} = $opt{require_key} if defined $opt{require_key};
    if ($ENV{SA_NO_KB_SERVER}) {
        $KB_PORT = $ENV{TEST_NGINX_KB_PORT};
    } else {
        start_kb_server(require_key => $opt{kb_require_key}, server_args => $opt{kb_server_args});
    }
    $ENV{TEST_NGINX_KB_PORT} = $KB_PORT if defined $KB_PORT;
    $ENV{TEST_NGINX_KB_URL} = "http://127.0.0.1:$KB_PORT" if defined $KB_PORT;
    $ENV{TEST_NGINX_KB_KEY} = $opt{kb_require_key} if defined $opt{kb_require_key};
    if ($ENV{SA_NO_HELPDESK_SERVER}) {
        $HELPDESK_PORT = $ENV{TEST_NGINX_HELPDESK_PORT};
    } else {
        start_helpdesk_server(require_key => $opt{helpdesk_require_key},
                              server_args => $opt{helpdesk_server_args});
    }
    $ENV{TEST_NGINX_HELPDESK_PORT} = $HELPDESK_PORT if defined $HELPDESK_PORT;
    $ENV{TEST_NGINX_HELPDESK_URL} = "http://127.0.0.1:$HELPDESK_PORT" if defined $HELPDESK_PORT;
    $ENV{TEST_NGINX_HELPDESK_KEY} = $opt{helpdesk_require_key} if defined $opt{helpdesk_require_key};
    if ($ENV{SA_NO_SHOP_SERVER}) {
        $SHOP_PORT = $ENV{TEST_NGINX_SHOP_PORT};
    } else {
        start_shop_server(require_key => $opt{shop_require_key},
                          server_args => $opt{shop_server_args});
    }
    $ENV{TEST_NGINX_SHOP_PORT} = $SHOP_PORT if defined $SHOP_PORT;
    $ENV{TEST_NGINX_SHOP_URL} = "http://127.0.0.1:$SHOP_PORT/api" if defined $SHOP_PORT;
    $ENV{TEST_NGINX_SHOP_KEY} = $opt{shop_require_key} if defined $opt{shop_require_key};
    $ENV{TEST_NGINX_STORE_DIR} = store_dir();
    $ENV{TEST_NGINX_KB} = sample_kb();
    unless ($REGISTERED) {
        my $add = Test::Nginx::Socket->can('add_block_preprocessor')
            || (defined &Test::Nginx::Util::add_block_preprocessor && \&Test::Nginx::Util::add_block_preprocessor)
            or die "SupportAgent::Test: load Test::Nginx::Socket first (use Test::Nginx::Socket ...)\n";
        $add->(\&load_module_preprocessor);
        $REGISTERED = 1;
    }
}

END {
    my $status = $?;
    stop_llm_server();
    stop_kb_server();
    stop_helpdesk_server();
    stop_shop_server();
    $? = $status;
}

1;
