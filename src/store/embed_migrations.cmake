# Writes OUT: a C++ array of every migrations/NNNN_name.sql under DIR, in
# order, so the binaries carry their schema (no files to install).
file(GLOB files RELATIVE ${DIR} ${DIR}/[0-9][0-9][0-9][0-9]_*.sql)
list(SORT files)
set(body "")
foreach(f IN LISTS files)
  file(READ ${DIR}/${f} sql)
  string(REGEX MATCH "^([0-9]+)_(.*)\\.sql$" _ ${f})
  math(EXPR version "${CMAKE_MATCH_1}")
  string(APPEND body "    {${version}, \"${CMAKE_MATCH_2}\", R\"vouchsql(${sql})vouchsql\"},\n")
endforeach()
file(WRITE ${OUT}.tmp "// Generated from src/store/migrations by embed_migrations.cmake.\n#include \"store/migrate.h\"\n\nnamespace vouch::store {\n\nconst std::vector<Migration>& Migrations() {\n  static const auto* kAll = new std::vector<Migration>{\n${body}  };\n  return *kAll;\n}\n\n}  // namespace vouch::store\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
