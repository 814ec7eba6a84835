# Included by CTest (a TEST_INCLUDE_FILES entry that vouch_test writes),
# after Catch2's discovery added a binary's tests: every Catch2 tag of a
# test becomes a CTest label of it, so `ctest -L pg`, `-L e2e`, `-L session`
# select by what a test needs or covers. Runs the binary once per tag.
# `extra`: labels every test of the binary gets (vouch_test's LABEL).
function(vouch_label_catch_tests exe extra)
  if(NOT EXISTS "${exe}")
    return()
  endif()
  # Catch2 v2 exits with the number of items listed: the code says nothing.
  execute_process(COMMAND "${exe}" --list-tags
    OUTPUT_VARIABLE listing ERROR_QUIET)
  string(REGEX MATCHALL "\\[[A-Za-z0-9_.-]+\\]" tags "${listing}")
  list(REMOVE_DUPLICATES tags)
  set(all_names "")
  foreach(bracketed IN LISTS tags)
    string(REGEX REPLACE "^\\[(.*)\\]$" "\\1" tag "${bracketed}")
    execute_process(COMMAND "${exe}" "[${tag}]" --list-test-names-only
      OUTPUT_VARIABLE names ERROR_QUIET)
    string(REPLACE ";" "" names "${names}")
    string(REPLACE "\n" ";" names "${names}")
    foreach(name IN LISTS names)
      string(STRIP "${name}" name)
      if(name STREQUAL "")
        continue()
      endif()
      string(MD5 key "${name}")
      list(APPEND labels_${key} "${tag}")
      list(APPEND all_names "${name}")
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES all_names)
  foreach(name IN LISTS all_names)
    string(MD5 key "${name}")
    # With no timings from an earlier run, CTest starts the costliest tests
    # first: the long end-to-end tests, then those with real parts, so the
    # many short tests fill the gaps instead of a long one ending the run.
    # (list(FIND): CTest reads this file without CMake's newer policies.)
    list(FIND labels_${key} "e2e" e2e_at)
    list(FIND labels_${key} "pg" pg_at)
    list(FIND labels_${key} "tpm" tpm_at)
    set(cost 1)
    if(e2e_at GREATER -1)
      set(cost 100)
    elseif(pg_at GREATER -1 OR tpm_at GREATER -1)
      set(cost 10)
    endif()
    set_tests_properties("${name}" PROPERTIES
      LABELS "${extra};${labels_${key}}" COST ${cost})
    # [serial]: a test that loads the machine on purpose (a flood) runs
    # alone, so neither it nor a test beside it misses its deadlines on a
    # two-core CI machine.
    list(FIND labels_${key} "serial" serial_at)
    if(serial_at GREATER -1)
      set_tests_properties("${name}" PROPERTIES RUN_SERIAL TRUE)
    endif()
  endforeach()
endfunction()
