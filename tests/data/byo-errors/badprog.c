/* Does not compile: the lab must show the compiler's messages. */
int main(void)
{
	return missing_variable;
}
