/*  Unit tests: the handling form (差评处理单) — its yearly number and its
    rendering as text and HTML, compared with the expected files
    tests/integration/expected/form_unit.{txt,html}. */
#include "../../services/case-router/case_form.h"
#include "../integration/test_case_fixture.h"

static void
test_number_format (void **state)
{
    (void) state;
    char buf[HCP_CASE_FORM_NUMBER_LEN];
    assert_int_equal (hcp_case_form_number (2026, 123, buf), 0);
    assert_string_equal (buf, "2026-000123");
    assert_int_equal (hcp_case_form_number (2026, 1, buf), 0);
    assert_string_equal (buf, "2026-000001");
    assert_int_equal (hcp_case_form_number (2027, 999999, buf), 0);
    assert_string_equal (buf, "2027-999999");
    assert_int_equal (hcp_case_form_number (2026, 0, buf), -1);
    assert_string_equal (buf, "");
    assert_int_equal (hcp_case_form_number (2026, 1000000, buf), -1);
    assert_int_equal (hcp_case_form_number (999, 1, buf), -1);
    assert_int_equal (hcp_case_form_number (10000, 1, buf), -1);
}

static void
test_number_parse (void **state)
{
    (void) state;
    int year = 0, number = 0;
    assert_int_equal (hcp_case_form_number_parse ("2026-000123", &year, &number), 0);
    assert_int_equal (year, 2026);
    assert_int_equal (number, 123);
    assert_int_equal (hcp_case_form_number_parse ("2026-00012", &year, &number), -1);
    assert_int_equal (hcp_case_form_number_parse ("2026_000123", &year, &number), -1);
    assert_int_equal (hcp_case_form_number_parse ("20x6-000123", &year, &number), -1);
    assert_int_equal (hcp_case_form_number_parse ("2026-000000", &year, &number), -1);
    assert_int_equal (hcp_case_form_number_parse ("2026-0001234", &year, &number), -1);
    assert_int_equal (hcp_case_form_number_parse (NULL, &year, &number), -1);
    //  Round trip.
    char buf[HCP_CASE_FORM_NUMBER_LEN];
    for (int n = 1; n < 1000000; n = n * 7 + 3) {
        hcp_case_form_number (2031, n, buf);
        assert_int_equal (hcp_case_form_number_parse (buf, &year, &number), 0);
        assert_int_equal (year, 2031);
        assert_int_equal (number, n);
    }
}

//  A form with every field, a comment that needs escaping in HTML and runs
//  over two lines.
static hcp_case_form_t
s_form (void)
{
    hcp_case_form_t form;
    memset (&form, 0, sizeof form);
    form.case_id = 42;
    snprintf (form.number, sizeof form.number, "2026-000123");
    form.unit_code = (char *) "LUM";
    form.unit_name = (char *) "国土空间用途管制司";
    form.unit_contact = (char *) "综合处";
    form.unit_phone = (char *) "010-66558101";
    form.item_code = (char *) "000119001000";
    form.item_name = (char *) "建设项目用地预审";
    form.rated_at_ms = tc_ms ("2026-03-02T10:15:00+08:00");
    form.channel = 1;
    form.stage = 3;
    form.grades[0] = 4;
    form.grades[1] = 0;
    form.grades[2] = 5;
    form.comment = (char *) "窗口等候时间太长 <3 小时> & 材料\n被退回两次";
    form.visited_at_ms = tc_ms ("2026-03-03T09:30:00+08:00");
    form.visit_cause = (char *) "材料清单与指南不一致";
    form.visit_reached = (char *) "评价人本人";
    form.visit_method = (char *) "电话";
    form.answer_working_days = 10;
    form.answer_due_known = true;
    hcp_date_parse ("2026-03-18", &form.answer_due);
    hcp_date_parse ("2026-03-04", &form.form_date);
    return form;
}

static void
test_text_rendering (void **state)
{
    (void) state;
    hcp_case_form_t form = s_form ();
    char *text = hcp_case_form_text (&form);
    //  Every field of the Annex is there.
    const char *fields[] = {"编号：2026-000123",
                            "政务服务“差评”处理单",
                            "国土空间用途管制司：",
                            "建设项目用地预审",
                            "1. 属实，提出整改意见。",
                            "2. 认为该评价是误评或恶意评价，提出申诉意见。",
                            "在10个工作日内（2026-03-18前）将意见反馈办公厅",
                            "联系人及电话：综合处  010-66558101",
                            "办公厅",
                            "2026年3月4日"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (!strstr (text, fields[i]))
            fail_msg ("text form lacks '%s':\n%s", fields[i], text);
    tc_expect_file ("form_unit.txt", text);
    free (text);

    //  Not yet designated: the unit is marked as proposed; no due date yet.
    form.unit_proposed = true;
    form.answer_due_known = false;
    text = hcp_case_form_text (&form);
    assert_non_null (strstr (text, "拟定责任单位"));
    assert_non_null (strstr (text, "在10个工作日内将意见反馈办公厅"));
    free (text);
    //  A provisional due date says so.
    form.answer_due_known = true;
    form.answer_due_provisional = true;
    text = hcp_case_form_text (&form);
    assert_non_null (strstr (text, "（2026-03-18前，暂定）"));
    free (text);
}

static void
test_html_rendering (void **state)
{
    (void) state;
    hcp_case_form_t form = s_form ();
    char *html = hcp_case_form_html (&form);
    assert_non_null (strstr (html, "<!DOCTYPE html>"));
    assert_non_null (strstr (html, "<meta charset=\"utf-8\">"));
    assert_non_null (strstr (html, "@page { size: A4"));
    //  Escaped, never raw markup from a rater.
    assert_null (strstr (html, "<3 小时>"));
    assert_non_null (strstr (html, "&lt;3 小时&gt; &amp; 材料<br>被退回两次"));
    tc_expect_file ("form_unit.html", html);
    free (html);
}

static void
test_names (void **state)
{
    (void) state;
    assert_string_equal (hcp_case_channel_name (5), "咨询电话4000996938");
    assert_string_equal (hcp_case_channel_name (9), "未知");
    assert_string_equal (hcp_case_stage_name (2), "咨询后评价");
    assert_string_equal (hcp_case_grade_name (0), "未评价");
    assert_string_equal (hcp_case_grade_name (4), "不满意");
    assert_string_equal (hcp_case_grade_name (6), "未知");
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_number_format),  cmocka_unit_test (test_number_parse),
        cmocka_unit_test (test_text_rendering), cmocka_unit_test (test_html_rendering),
        cmocka_unit_test (test_names),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
