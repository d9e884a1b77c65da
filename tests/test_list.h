/*
 * test_list.h -- every C test, by area, in the order they run. Included
 * by runner.c with TEST_DECLARE defined twice: once to declare, once to
 * fill the table.
 */
/* test_switch.c */
TEST_DECLARE(ping_pong)
TEST_DECLARE(switch_to_self_returns_the_message)
TEST_DECLARE(run_return_goes_to_parent_and_kills)
TEST_DECLARE(nested_parents_return_in_order)
TEST_DECLARE(dead_parent_hands_result_to_nearest_live_ancestor)
TEST_DECLARE(new_parent_is_started_by_childs_result)
TEST_DECLARE(throw_flag_travels_to_new_greenlet)
TEST_DECLARE(hooks_bracket_every_switch)
TEST_DECLARE(error_names_and_messages)
/* test_stacks.c */
TEST_DECLARE(deep_recursion_interleaved_keeps_stack_contents)
TEST_DECLARE(two_greenlets_each_over_one_megabyte_deep)
TEST_DECLARE(heap_bytes_are_accounted_exactly)
TEST_DECLARE(suspended_ancestors_stay_live_while_descendants_run)
/* test_model.c */
TEST_DECLARE(random_operations_match_the_model)
/* test_threads.c */
TEST_DECLARE(eight_threads_switch_their_own_greenlets_while_walked)
TEST_DECLARE(other_threads_greenlets_are_refused_and_die_with_their_thread)
TEST_DECLARE(info_from_another_thread_while_parents_change)
TEST_DECLARE(fork_child_sees_other_threads_exited)
TEST_DECLARE(new_greenlet_moves_to_the_thread_of_its_new_parent)
TEST_DECLARE(held_main_greenlet_outlives_its_thread)
/* test_errors.c */
TEST_DECLARE(bad_arguments_are_refused)
TEST_DECLARE(cyclic_parents_are_refused)
TEST_DECLARE(switching_to_a_dead_greenlet_is_refused)
TEST_DECLARE(running_greenlets_cannot_be_killed)
TEST_DECLARE(allocation_failure_in_create_is_reported)
TEST_DECLARE(allocation_failure_for_a_threads_main_greenlet_is_reported)
TEST_DECLARE(allocation_failure_mid_switch_changes_nothing)
TEST_DECLARE(finishing_greenlet_waits_for_memory_to_resume_its_parent)
/* test_unwind.c */
TEST_DECLARE(unwinder_crosses_the_switch_frame_and_stops_at_the_root)
#ifdef GL_TEST_HAVE_LIBUNWIND
TEST_DECLARE(libunwind_walks_a_suspended_greenlet_to_its_run_function)
#endif
/* test_scale.c */
TEST_DECLARE(ten_thousand_live_greenlets)
