/*
 * boost_context.cpp -- the Boost.Context half of the switch benchmark: two
 * measured bodies (see bench_body in bench_clock.h) that switch with
 * Boost's lowest layer, make_fcontext and jump_fcontext from
 * <boost/context/detail/fcontext.hpp>, the assembly under callcc and
 * fibers. They are C++ only because that header is; they are called from
 * bench/switch_bench.c through C linkage.
 *
 * The hot loops live here rather than in C so that each switch is one
 * direct call of jump_fcontext, as in any Boost user's code: a C wrapper per
 * jump would add a call to every switch and flatter the engine.
 *
 * fcontext rules that shape the code: a jump hands over the context to
 * resume *and* replaces it, so each side keeps the fctx that came with the
 * last transfer; and a context function must never return (the process
 * would exit), so a finished coroutine jumps away one last time and is
 * simply never resumed, its stack freed by main.
 */
#include "bench_clock.h"

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <boost/context/detail/fcontext.hpp>

namespace fcontext = boost::context::detail;

extern "C" {
bench_body boost_fcontext_switch_rounds;
bench_body boost_fcontext_life_rounds;
}

namespace {

/* Same size as the ucontext coroutines' stacks in switch_bench.c. */
const std::size_t stack_bytes = 64 * 1024;

void *as_data(std::uintptr_t value)
{
    return reinterpret_cast<void *>(value);
}

std::uintptr_t as_value(void *data)
{
    return reinterpret_cast<std::uintptr_t>(data);
}

/* A context that will run `entry` on `stack` (stack_bytes long) when first
 * jumped to. fcontext stacks grow down from the address given. */
fcontext::fcontext_t prepare(void *stack, void (*entry)(fcontext::transfer_t))
{
    return fcontext::make_fcontext(static_cast<char *>(stack) + stack_bytes,
                                   stack_bytes, entry);
}

/* One ping-pong between main and a partner on its own stack. Values travel
 * as the transfer's data; `stop` asks the partner to finish. */
struct pingpong {
    std::size_t depth_bytes;
    std::uint64_t rounds;
    fcontext::fcontext_t main;    /* where the partner jumps next */
    fcontext::fcontext_t partner; /* where main jumps next */
    bool stop;
    std::uint64_t elapsed_ns;
};

/* The partner, at its depth: says it is ready (value 0), then answers every
 * value v with v + 1 until main sets `stop`. */
void partner_loop(void *argument)
{
    pingpong *state = static_cast<pingpong *>(argument);
    fcontext::transfer_t received = fcontext::jump_fcontext(state->main,
                                                            as_data(0));
    while (!state->stop)
        received = fcontext::jump_fcontext(
            received.fctx, as_data(as_value(received.data) + 1));
    state->main = received.fctx;
}

void partner_entry(fcontext::transfer_t first)
{
    pingpong *state = static_cast<pingpong *>(first.data);
    state->main = first.fctx;
    bench_call_at_depth(state->depth_bytes, partner_loop, state);
    fcontext::jump_fcontext(state->main, as_data(0)); /* finished */
    bench_wrong_value("boost partner resumed after finishing", 1, 0);
}

/* The main side, at its depth: the timed loop. */
void main_loop(void *argument)
{
    pingpong *state = static_cast<pingpong *>(argument);
    fcontext::fcontext_t partner = state->partner;
    std::uint64_t start_ns = bench_now_ns();
    for (std::uint64_t round = 1; round <= state->rounds; round++) {
        fcontext::transfer_t received =
            fcontext::jump_fcontext(partner, as_data(round));
        partner = received.fctx;
        bench_expect("boost ping-pong", as_value(received.data), round + 1);
    }
    state->elapsed_ns = bench_now_ns() - start_ns;
    state->partner = partner;
}

void finish_at_once(fcontext::transfer_t first)
{
    fcontext::jump_fcontext(first.fctx, as_data(as_value(first.data) + 1));
    bench_wrong_value("boost coroutine resumed after finishing", 1, 0);
}

} // namespace

/* bench_body: `context` is a const size_t *, the depth in bytes. */
std::uint64_t boost_fcontext_switch_rounds(void *context, std::uint64_t rounds)
{
    pingpong state = {};
    state.depth_bytes = *static_cast<const std::size_t *>(context);
    state.rounds = rounds;
    void *stack = bench_allocate(stack_bytes);
    fcontext::transfer_t received =
        fcontext::jump_fcontext(prepare(stack, partner_entry), &state);
    bench_expect("boost partner ready", as_value(received.data), 0);
    state.partner = received.fctx;
    bench_call_at_depth(state.depth_bytes, main_loop, &state);
    state.stop = true;
    received = fcontext::jump_fcontext(state.partner, as_data(0));
    bench_expect("boost partner finished", as_value(received.data), 0);
    std::free(stack);
    return state.elapsed_ns;
}

/* bench_body: allocate a stack, create, start, finish, free; `context` is
 * unused. */
std::uint64_t boost_fcontext_life_rounds(void *context, std::uint64_t rounds)
{
    (void)context;
    std::uint64_t start_ns = bench_now_ns();
    for (std::uint64_t round = 1; round <= rounds; round++) {
        void *stack = bench_allocate(stack_bytes);
        fcontext::transfer_t received = fcontext::jump_fcontext(
            prepare(stack, finish_at_once), as_data(round));
        bench_expect("boost life", as_value(received.data), round + 1);
        std::free(stack);
    }
    return bench_now_ns() - start_ns;
}
