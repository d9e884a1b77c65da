/*
 * errors.c -- names and messages of the engine's error codes, both drawn
 * from the one table GL_ERROR_TABLE in glengine.h.
 */
#include "engine.h"

const char *gl_error_name(int code)
{
    switch (code) {
    case 0:
        return "GL_OK";
#define GL_ERROR_NAME_CASE(name, value, message)                              \
    case value:                                                               \
        return #name;
        GL_ERROR_TABLE(GL_ERROR_NAME_CASE)
#undef GL_ERROR_NAME_CASE
    }
    return "GL_EUNKNOWN";
}

const char *gl_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define GL_ERROR_MESSAGE_CASE(name, value, message)                           \
    case value:                                                               \
        return message;
        GL_ERROR_TABLE(GL_ERROR_MESSAGE_CASE)
#undef GL_ERROR_MESSAGE_CASE
    }
    return "unknown error code";
}
