// The translation unit that builds the tests' shared precompiled header (EDGEKIT_TEST_PCH in
// CMakeLists.txt); it has no code of its own.
