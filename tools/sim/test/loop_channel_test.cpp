#include <gtest/gtest.h>
TEST(LoopChannelPlaceholder, Nothing) {}
